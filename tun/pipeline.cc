#include "tun/pipeline.h"

#include <time.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace natd::tun {
namespace {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

constexpr auto kIdleWait = std::chrono::milliseconds(50);

}  // namespace

const char* PipelineDropName(PipelineDrop d) {
  switch (d) {
#define NATD_PIPELINE_NAME(name, text) \
  case PipelineDrop::name:             \
    return text;
    NATD_PIPELINE_DROPS(NATD_PIPELINE_NAME)
#undef NATD_PIPELINE_NAME
    case PipelineDrop::kCount:
      break;
  }
  return "?";
}

Pipeline::Pipeline(const PipelineOptions& options, std::vector<PacketIo*> readers, PacketIo* writer,
                   PacketProcessor* processor)
    : opt_(options),
      readers_(std::move(readers)),
      writer_io_(writer),
      proc_(processor),
      pool_(options.pool_buffers, options.buffer_size, options.prefault),
      // The writer's producers are the workers; room for each to fill the depth.
      writer_queue_(size_t(options.queue_depth) * 2, processor->workers() + 1, 0) {
  for (uint32_t w = 0; w < proc_->workers(); ++w) {
    worker_queues_.push_back(
        std::make_unique<Queue>(size_t(options.queue_depth) * 2, readers_.size() + proc_->workers() + 1, 0));
  }
  status_parts_.resize(proc_->workers());
  for (uint32_t w = 0; w < proc_->workers(); ++w) tasks_.push_back(std::make_unique<Tasks>());
}

void Pipeline::RunOnWorker(uint32_t w, std::function<void(int64_t)> task) {
  Tasks& t = *tasks_.at(w);
  std::lock_guard<std::mutex> lock(t.mu);
  t.queued.push_back(std::move(task));
  t.pending.store(true, std::memory_order_release);
}

void Pipeline::RunTasks(uint32_t w, int64_t now) {
  Tasks& t = *tasks_[w];
  if (!t.pending.load(std::memory_order_acquire)) return;
  std::vector<std::function<void(int64_t)>> run;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    run.swap(t.queued);
    t.pending.store(false, std::memory_order_relaxed);
  }
  for (auto& task : run) task(now);
}

Pipeline::~Pipeline() { Stop(); }

void Pipeline::Start() {
  if (started_) return;
  started_ = true;
  if (opt_.run_to_completion && readers_.size() == 1 && proc_->workers() == 1) {
    inline_ = true;
    reader_threads_.emplace_back([this] { InlineLoop(); });
    return;
  }
  writer_thread_ = std::thread([this] { WriterLoop(); });
  for (uint32_t w = 0; w < proc_->workers(); ++w) worker_threads_.emplace_back([this, w] { WorkerLoop(w); });
  for (uint32_t r = 0; r < readers_.size(); ++r) reader_threads_.emplace_back([this, r] { ReaderLoop(r); });
}

void Pipeline::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Upstream first, so each stage drains what the one before it left.
  stop_readers_ = true;
  for (auto& t : reader_threads_) t.join();
  if (inline_) {
    DrainAfterWorkers();  // writes directly: there is no writer thread
    pool_free_at_stop_ = pool_.free_approx();
    return;
  }
  stop_workers_ = true;
  for (auto& t : worker_threads_) t.join();
  DrainAfterWorkers();
  stop_writer_ = true;
  writer_thread_.join();
  pool_free_at_stop_ = pool_.free_approx();
}

// The free buffers a reading thread holds, topped up from the pool before
// each read; a read fills them from the front, and what it leaves unused
// stays for the next. With no buffer anywhere a packet is still read (into
// scratch) and dropped, so the device keeps moving. Given back at the end.
// Run to completion, the thread that reads also frees, and Keep takes its
// freed buffers back before the pool does: the same few buffers then carry
// every batch, their lines and pages warm in the caches, where the pool's
// FIFO free list would cycle through all of them (with 2048 buffers of
// 64 KB, a cold line and page for each packet the device copies in).
class Pipeline::ReadStash {
 public:
  ReadStash(Pipeline& p, uint32_t batch)
      : p_(p), in_(p.pool_.MakeConsumerToken()), stash_(batch), scratch_(kHeadroom + p.pool_.buffer_size()) {}
  ~ReadStash() {
    auto out = p_.pool_.MakeProducerToken();
    p_.pool_.Release(out, stash_.data(), held_);
  }

  // Reads a batch; returns how many packets, which are Packets(got).
  size_t Read(PacketIo* io) {
    if (held_ < stash_.size()) held_ += p_.pool_.Acquire(in_, stash_.data() + held_, stash_.size() - held_);
    if (held_ == 0) {
      // Shaped like a pooled buffer (headroom first): a device may use it.
      PacketBuf tmp{scratch_.data() + kHeadroom, 0, 0, 0, 0};
      if (io->ReadBatch(std::span(&tmp, 1), p_.pool_.buffer_size(), p_.stop_readers_) > 0) {
        p_.read_.fetch_add(1, std::memory_order_relaxed);
        p_.Drop(PipelineDrop::kPoolEmpty);
      }
      return 0;
    }
    const size_t got = io->ReadBatch(std::span(stash_.data(), held_), p_.pool_.buffer_size(), p_.stop_readers_);
    p_.read_.fetch_add(got, std::memory_order_relaxed);
    return got;
  }
  std::span<const PacketBuf> Packets(size_t got) const { return std::span(stash_.data(), got); }
  // Takes back freed buffers while there is room; returns how many (the
  // first ones of `bufs`), the rest are for the pool.
  size_t Keep(const PacketBuf* bufs, size_t n) {
    const size_t k = std::min(n, stash_.size() - held_);
    for (size_t i = 0; i < k; ++i) stash_[held_ + i] = p_.pool_.Fresh(bufs[i].id);
    held_ += k;
    return k;
  }
  // The first `got` buffers left with their packets: the rest move to the front.
  void Consume(size_t got) {
    std::copy(stash_.begin() + got, stash_.begin() + held_, stash_.begin());
    held_ -= got;
  }

 private:
  Pipeline& p_;
  moodycamel::ConsumerToken in_;
  std::vector<PacketBuf> stash_;
  size_t held_ = 0;
  std::vector<uint8_t> scratch_;
};

void Pipeline::ReaderLoop(uint32_t r) {
  PacketIo* io = readers_[r];
  const uint32_t batch = opt_.batch;
  const uint32_t workers = proc_->workers();
  auto pool_out = pool_.MakeProducerToken();
  std::vector<moodycamel::ProducerToken> tokens;
  for (uint32_t w = 0; w < workers; ++w) tokens.emplace_back(*worker_queues_[w]);
  ReadStash stash(*this, batch);
  std::vector<std::vector<PacketBuf>> staged(workers);
  for (auto& s : staged) s.reserve(batch);

  while (!stop_readers_.load(std::memory_order_relaxed)) {
    const size_t got = stash.Read(io);
    if (got == 0) continue;
    for (const PacketBuf& b : stash.Packets(got)) staged[proc_->WorkerOf(b.data, b.len)].push_back(b);
    stash.Consume(got);
    for (uint32_t w = 0; w < workers; ++w) {
      auto& s = staged[w];
      if (s.empty()) continue;
      if (!worker_queues_[w]->try_enqueue_bulk(tokens[w], s.data(), s.size())) {
        Drop(PipelineDrop::kWorkerQueueFull, s.size());
        pool_.Release(pool_out, s.data(), s.size());
      }
      s.clear();
    }
  }
}

void Pipeline::CollectStatus(uint32_t w, int64_t now_ms) {
  const uint64_t gen = status_generation_.load();
  std::string part;
  proc_->AppendStatus(w, &part, now_ms);
  std::lock_guard<std::mutex> lock(status_mu_);
  if (status_collecting_ != gen) {
    status_collecting_ = gen;
    status_answers_ = 0;
    for (auto& p : status_parts_) p.clear();
  }
  status_parts_[w] = std::move(part);
  if (++status_answers_ == proc_->workers()) {
    const std::string counters = CountersText();
    size_t size = counters.size();
    for (const auto& p : status_parts_) size += p.size();
    std::string all;
    all.reserve(size);
    for (auto& p : status_parts_) {
      all += p;
      std::string().swap(p);  // a dump of a big table is not kept until the next
    }
    all += counters;
    if (opt_.on_status) opt_.on_status(all);
  }
}

struct Pipeline::BatchContext {
  BatchContext(Pipeline& p, uint32_t batch)
      : writer_token(p.writer_queue_), pool_out(p.pool_.MakeProducerToken()), pkts(batch), verdicts(batch),
        released(batch), released_how(batch), handoff(p.proc_->workers()) {
    for (auto& q : p.worker_queues_) handoff_tokens.emplace_back(*q);
    to_write.reserve(batch);
    to_free.reserve(batch);
    for (auto& h : handoff) h.reserve(batch);
  }
  moodycamel::ProducerToken writer_token;
  moodycamel::ProducerToken pool_out;
  std::vector<moodycamel::ProducerToken> handoff_tokens;
  std::vector<PacketBuf> pkts, to_write, to_free;
  std::vector<Disposition> verdicts;
  std::vector<PacketBuf> released;
  std::vector<Disposition> released_how;
  std::vector<std::vector<PacketBuf>> handoff;  // per target worker
  bool direct_write = false;  // run to completion: write here, no writer thread
  ReadStash* keep = nullptr;   // run to completion: freed buffers go back here first
};

void Pipeline::FinishBatch(uint32_t w, BatchContext& ctx, size_t n, int64_t now) {
  if (n > 0) {
    proc_->Process(w, std::span(ctx.pkts.data(), n), std::span(ctx.verdicts.data(), n), now);
    processed_.fetch_add(n, std::memory_order_relaxed);
    Route(ctx, ctx.pkts.data(), ctx.verdicts.data(), n);
  }
  // What the processor let go of comes after the batch that freed it.
  size_t r;
  while ((r = proc_->TakeReleased(w, std::span(ctx.released), std::span(ctx.released_how), now, false)) > 0) {
    released_.fetch_add(r, std::memory_order_relaxed);
    Route(ctx, ctx.released.data(), ctx.released_how.data(), r);
  }
  Flush(ctx);
}

void Pipeline::Route(BatchContext& ctx, PacketBuf* pkts, const Disposition* how, size_t n) {
  const uint32_t workers = proc_->workers();
  for (size_t i = 0; i < n; ++i) {
    PacketBuf& p = pkts[i];
    switch (how[i]) {
      case Disposition::kWrite:
        ctx.to_write.push_back(p);
        break;
      case Disposition::kStatus:
        status_.fetch_add(1, std::memory_order_relaxed);
        status_generation_.fetch_add(1);
        ctx.to_free.push_back(p);
        break;
      case Disposition::kHold:  // the processor keeps it: not ours until released
        held_.fetch_add(1, std::memory_order_relaxed);
        break;
      case Disposition::kHandOff:
        if (p.hand_to < workers) {
          p.flags |= kHandedOff;
          ctx.handoff[p.hand_to].push_back(p);
          break;
        }
        [[fallthrough]];  // a processor bug: no such worker
      case Disposition::kDrop:
        dropped_by_processor_.fetch_add(1, std::memory_order_relaxed);
        ctx.to_free.push_back(p);
        break;
    }
  }
}

void Pipeline::Flush(BatchContext& ctx) {
  const uint32_t workers = proc_->workers();
  if (ctx.direct_write && !ctx.to_write.empty()) {
    const size_t n = ctx.to_write.size();
    const size_t ok = writer_io_->WriteBatch(std::span(ctx.to_write.data(), n));
    written_.fetch_add(ok, std::memory_order_relaxed);
    if (ok < n) Drop(PipelineDrop::kWriteFailed, n - ok);
    ctx.to_free.insert(ctx.to_free.end(), ctx.to_write.begin(), ctx.to_write.end());
  } else if (!ctx.to_write.empty() &&
             !writer_queue_.try_enqueue_bulk(ctx.writer_token, ctx.to_write.data(), ctx.to_write.size())) {
    Drop(PipelineDrop::kWriterQueueFull, ctx.to_write.size());
    ctx.to_free.insert(ctx.to_free.end(), ctx.to_write.begin(), ctx.to_write.end());
  }
  ctx.to_write.clear();
  for (uint32_t t = 0; t < workers; ++t) {
    auto& h = ctx.handoff[t];
    if (h.empty()) continue;
    if (worker_queues_[t]->try_enqueue_bulk(ctx.handoff_tokens[t], h.data(), h.size())) {
      handed_off_.fetch_add(h.size(), std::memory_order_relaxed);
    } else {
      Drop(PipelineDrop::kHandOffQueueFull, h.size());
      ctx.to_free.insert(ctx.to_free.end(), h.begin(), h.end());
    }
    h.clear();
  }
  if (!ctx.to_free.empty()) {
    const size_t kept = ctx.keep ? ctx.keep->Keep(ctx.to_free.data(), ctx.to_free.size()) : 0;
    if (kept < ctx.to_free.size()) pool_.Release(ctx.pool_out, ctx.to_free.data() + kept, ctx.to_free.size() - kept);
  }
  ctx.to_free.clear();
}

void Pipeline::WorkerLoop(uint32_t w) {
  Queue& in = *worker_queues_[w];
  moodycamel::ConsumerToken in_token(in);
  BatchContext ctx(*this, opt_.batch);
  uint64_t status_seen = 0;

  while (true) {
    size_t n = in.wait_dequeue_bulk_timed(in_token, ctx.pkts.data(), opt_.batch, kIdleWait);
    const int64_t now = NowMs();
    if (n > 0) FinishBatch(w, ctx, n, now);
    proc_->Tick(w, now);
    RunTasks(w, now);
    FinishBatch(w, ctx, 0, now);  // what expiry (or a task) let go of
    if (const uint64_t gen = status_generation_.load(std::memory_order_relaxed); gen != status_seen) {
      status_seen = gen;
      CollectStatus(w, now);
    }
    // Readers are joined before stop_workers_ is set: once it is, only
    // hand-offs from other workers can still arrive, and DrainAfterWorkers
    // finishes those.
    if (n == 0 && stop_workers_.load() && in.size_approx() == 0) break;
  }
}

void Pipeline::InlineLoop() {
  PacketIo* io = readers_[0];
  const uint32_t batch = opt_.batch;
  BatchContext ctx(*this, batch);
  ctx.direct_write = true;
  ReadStash stash(*this, batch);
  ctx.keep = &stash;
  uint64_t status_seen = 0;
  while (!stop_readers_.load(std::memory_order_relaxed)) {
    const size_t got = stash.Read(io);
    const int64_t now = NowMs();
    if (got > 0) {
      const auto packets = stash.Packets(got);
      std::copy(packets.begin(), packets.end(), ctx.pkts.begin());
      stash.Consume(got);
      FinishBatch(0, ctx, got, now);
    }
    // A processor's hand-off to its only worker comes back here.
    size_t n;
    while ((n = worker_queues_[0]->try_dequeue_bulk(ctx.pkts.data(), batch)) > 0) FinishBatch(0, ctx, n, now);
    proc_->Tick(0, now);
    RunTasks(0, now);
    FinishBatch(0, ctx, 0, now);
    if (const uint64_t gen = status_generation_.load(std::memory_order_relaxed); gen != status_seen) {
      status_seen = gen;
      CollectStatus(0, now);
    }
  }
}

void Pipeline::DrainAfterWorkers() {
  // Every worker thread has ended, so this thread may act for any of them.
  // A hand-off leads to at most one more, but loop until the queues are dry.
  BatchContext ctx(*this, opt_.batch);
  ctx.direct_write = inline_;
  bool any = true;
  while (any) {
    any = false;
    for (uint32_t w = 0; w < proc_->workers(); ++w) {
      size_t n;
      while ((n = worker_queues_[w]->try_dequeue_bulk(ctx.pkts.data(), opt_.batch)) > 0) {
        FinishBatch(w, ctx, n, NowMs());
        any = true;
      }
    }
  }
  for (uint32_t w = 0; w < proc_->workers(); ++w) RunTasks(w, NowMs());
  // Then whatever the processor still keeps comes back, to be dropped.
  for (uint32_t w = 0; w < proc_->workers(); ++w) {
    size_t r;
    while ((r = proc_->TakeReleased(w, std::span(ctx.released), std::span(ctx.released_how), NowMs(), true)) > 0) {
      released_.fetch_add(r, std::memory_order_relaxed);
      Route(ctx, ctx.released.data(), ctx.released_how.data(), r);
      Flush(ctx);
    }
  }
}

void Pipeline::WriterLoop() {
  moodycamel::ConsumerToken token(writer_queue_);
  auto pool_out = pool_.MakeProducerToken();
  std::vector<PacketBuf> pkts(opt_.batch);
  while (true) {
    size_t n = writer_queue_.wait_dequeue_bulk_timed(token, pkts.data(), pkts.size(), kIdleWait);
    if (n > 0) {
      size_t ok = writer_io_->WriteBatch(std::span(pkts.data(), n));
      written_.fetch_add(ok, std::memory_order_relaxed);
      if (ok < n) Drop(PipelineDrop::kWriteFailed, n - ok);
      pool_.Release(pool_out, pkts.data(), n);
    } else if (stop_writer_.load() && writer_queue_.size_approx() == 0) {
      break;
    }
  }
}

void Pipeline::RequestStatus() { status_generation_.fetch_add(1); }

PipelineTotals Pipeline::Totals() const {
  PipelineTotals t;
  t.read = read_.load();
  t.written = written_.load();
  t.processed = processed_.load();
  t.dropped_by_processor = dropped_by_processor_.load();
  t.status = status_.load();
  t.handed_off = handed_off_.load();
  t.held = held_.load();
  t.released = released_.load();
  for (size_t i = 0; i < static_cast<size_t>(PipelineDrop::kCount); ++i) t.drops[i] = drops_[i].load();
  t.pool_buffers = pool_.count();
  t.pool_free_at_stop = pool_free_at_stop_;
  return t;
}

std::string Pipeline::CountersText() const {
  PipelineTotals t = Totals();
  std::string out = absl::StrCat("pipeline.read ", t.read, "\npipeline.processed ", t.processed,
                                 "\npipeline.written ", t.written, "\npipeline.dropped_by_nat ",
                                 t.dropped_by_processor, "\npipeline.status_requests ", t.status,
                                 "\npipeline.handed_off ", t.handed_off, "\npipeline.held ", t.held,
                                 "\npipeline.released ", t.released, "\n");
  for (size_t i = 0; i < static_cast<size_t>(PipelineDrop::kCount); ++i) {
    absl::StrAppend(&out, "pipeline.drop.", PipelineDropName(static_cast<PipelineDrop>(i)), " ", t.drops[i], "\n");
  }
  absl::StrAppend(&out, "pipeline.pool_free ", pool_.free_approx(), " of ", pool_.count(), "\n");
  return out;
}

}  // namespace natd::tun

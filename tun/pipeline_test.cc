// The pipeline with an in-memory device and a toy processor: no root, no TUN.
#include "tun/pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "tun/fake_io.h"

namespace natd::tun {
namespace {

using Bytes = FakeIo::Bytes;

// Packets are [flow, seq_hi, seq_lo, kind, ...]: worker = flow % workers;
// kind 1 = drop, 2 = status, 3 = hand off to the next worker (byte 4 set to
// 0xB0 + worker) which then writes it; anything else is written with byte 3
// set to 0xAA + worker (proof that the right worker touched it).
class ToyProcessor final : public PacketProcessor {
 public:
  explicit ToyProcessor(uint32_t workers, std::chrono::microseconds delay = {}) : workers_(workers), delay_(delay) {}
  uint32_t workers() const override { return workers_; }
  uint32_t WorkerOf(const uint8_t* d, size_t len) const override { return len ? d[0] % workers_ : 0; }
  void Process(uint32_t w, std::span<PacketBuf> pkts, std::span<Disposition> out, int64_t) override {
    Exclusive guard(this, w);
    for (size_t i = 0; i < pkts.size(); ++i) {
      uint8_t* d = pkts[i].data;
      if (pkts[i].len < 5 || d[3] == 1) {
        out[i] = Disposition::kDrop;
      } else if (d[3] == 2) {
        out[i] = Disposition::kStatus;
      } else if (d[3] == 3 && !(pkts[i].flags & kHandedOff)) {
        d[4] = uint8_t(0xB0 + w);
        pkts[i].hand_to = uint16_t((w + 1) % workers_);
        out[i] = Disposition::kHandOff;
      } else {
        d[3] = uint8_t(0xAA + w);
        out[i] = Disposition::kWrite;
      }
    }
    if (delay_.count()) std::this_thread::sleep_for(delay_);
  }
  void Tick(uint32_t w, int64_t) override {
    Exclusive guard(this, w);
    ticks_.fetch_add(1);
  }
  void AppendStatus(uint32_t w, std::string* out, int64_t) override {
    Exclusive guard(this, w);
    *out += "worker " + std::to_string(w) + "\n";
  }
  uint64_t ticks() const { return ticks_.load(); }
  bool wrong_thread() const { return wrong_thread_.load(); }

 private:
  // No two threads ever act for one worker at once (its shard is unlocked).
  struct Exclusive {
    Exclusive(ToyProcessor* p, uint32_t w) : busy(p->busy_[w]), wrong(p->wrong_thread_) {
      if (busy.exchange(true)) wrong = true;
    }
    ~Exclusive() { busy = false; }
    std::atomic<bool>& busy;
    std::atomic<bool>& wrong;
  };
  const uint32_t workers_;
  const std::chrono::microseconds delay_;
  std::atomic<bool> busy_[16] = {};
  std::atomic<uint64_t> ticks_{0};
  std::atomic<bool> wrong_thread_{false};
};

Bytes Packet(uint8_t flow, uint16_t seq, uint8_t kind = 0, size_t len = 64) {
  Bytes b(len, 0x5a);
  b[0] = flow;
  b[1] = uint8_t(seq >> 8);
  b[2] = uint8_t(seq);
  b[3] = kind;
  return b;
}

bool WaitFor(const std::function<bool()>& done, int ms = 5000) {
  for (int i = 0; i < ms / 5; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

PipelineOptions SmallOptions() {
  PipelineOptions o;
  o.pool_buffers = 256;
  o.buffer_size = 256;
  o.batch = 16;
  o.queue_depth = 128;
  return o;
}

TEST(PipelineTest, TranslatesEveryPacketAndKeepsFlowOrder) {
  FakeIo in0, in1, out;
  ToyProcessor proc(3);
  Pipeline p(SmallOptions(), {&in0, &in1}, &out, &proc);
  p.Start();
  constexpr int kPerFlow = 300;
  // Flows 0..5: even flows enter by queue 0, odd by queue 1 (as the kernel
  // hashes a flow to one queue). Injected slowly enough never to overflow.
  for (int seq = 0; seq < kPerFlow; ++seq) {
    for (uint8_t flow = 0; flow < 6; ++flow) (flow % 2 ? in1 : in0).Inject(Packet(flow, uint16_t(seq)));
    if (seq % 20 == 19) {
      ASSERT_TRUE(WaitFor([&] { return out.written_count() == size_t(6 * (seq + 1)); }));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return out.written_count() == 6 * kPerFlow; }));
  p.Stop();
  std::map<int, int> next;
  for (const Bytes& b : out.TakeWritten()) {
    const int flow = b[0], seq = b[1] << 8 | b[2];
    EXPECT_EQ(b[3], 0xAA + flow % 3) << "processed by the worker that owns the flow";
    EXPECT_EQ(seq, next[flow]++) << "flow " << flow << " reordered";
  }
  const PipelineTotals t = p.Totals();
  EXPECT_EQ(t.read, 6u * kPerFlow);
  EXPECT_EQ(t.written, 6u * kPerFlow);
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers) << "every buffer back in the pool";
  EXPECT_FALSE(proc.wrong_thread());
  EXPECT_GT(proc.ticks(), 0u) << "workers tick between batches";
}

TEST(PipelineTest, HandOffsReachTheNamedWorkerInFlowOrder) {
  FakeIo in0, in1, out;
  ToyProcessor proc(3);
  Pipeline p(SmallOptions(), {&in0, &in1}, &out, &proc);
  p.Start();
  constexpr int kPerFlow = 200;
  for (int seq = 0; seq < kPerFlow; ++seq) {
    for (uint8_t flow = 0; flow < 6; ++flow) (flow % 2 ? in1 : in0).Inject(Packet(flow, uint16_t(seq), 3));
    if (seq % 10 == 9) {
      ASSERT_TRUE(WaitFor([&] { return out.written_count() == size_t(6 * (seq + 1)); }));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return out.written_count() == 6 * kPerFlow; }));
  p.Stop();
  std::map<int, int> next;
  for (const Bytes& b : out.TakeWritten()) {
    const int flow = b[0], seq = b[1] << 8 | b[2];
    EXPECT_EQ(b[4], 0xB0 + flow % 3) << "first half on the flow's worker";
    EXPECT_EQ(b[3], 0xAA + (flow % 3 + 1) % 3) << "second half on the worker it was handed to";
    EXPECT_EQ(seq, next[flow]++) << "flow " << flow << " reordered";
  }
  const PipelineTotals t = p.Totals();
  EXPECT_EQ(t.handed_off, 6u * kPerFlow);
  EXPECT_EQ(t.processed, 2u * 6 * kPerFlow) << "each packet is processed once per worker it visits";
  EXPECT_EQ(t.written, 6u * kPerFlow);
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
  EXPECT_FALSE(proc.wrong_thread());
}

TEST(PipelineTest, StopFinishesHandOffsInFlight) {
  FakeIo in, out;
  ToyProcessor proc(2, std::chrono::microseconds(300));
  PipelineOptions o = SmallOptions();
  o.queue_depth = 64;
  Pipeline p(o, {&in}, &out, &proc);
  p.Start();
  constexpr int kSent = 400;
  for (int i = 0; i < kSent; ++i) in.Inject(Packet(uint8_t(i % 4), uint16_t(i), 3));
  ASSERT_TRUE(WaitFor([&] { return in.pending() == 0; }, 20000));
  p.Stop();  // hand-offs may still be queued for workers that have ended
  const PipelineTotals t = p.Totals();
  uint64_t dropped = 0;
  for (uint64_t d : t.drops) dropped += d;
  dropped -= t.drops[size_t(PipelineDrop::kWriteFailed)];
  EXPECT_EQ(t.read, uint64_t(kSent));
  EXPECT_EQ(t.written + dropped, uint64_t(kSent)) << "every packet read is written or dropped with a reason";
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
  EXPECT_FALSE(proc.wrong_thread());
}

TEST(PipelineTest, TasksRunOnTheirWorker) {
  FakeIo in, out;
  ToyProcessor proc(3);
  Pipeline p(SmallOptions(), {&in}, &out, &proc);
  p.Start();
  std::atomic<int> ran{0};
  std::mutex mu;
  std::map<uint32_t, std::thread::id> where;
  for (uint32_t w = 0; w < 3; ++w) {
    for (int i = 0; i < 5; ++i) {
      p.RunOnWorker(w, [&, w](int64_t now) {
        EXPECT_GT(now, 0);
        std::lock_guard<std::mutex> lock(mu);
        if (where.count(w)) {
          EXPECT_EQ(where[w], std::this_thread::get_id()) << "worker " << w;
        }
        where[w] = std::this_thread::get_id();
        ++ran;
      });
    }
  }
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 15; }));
  EXPECT_NE(where[0], where[1]);
  EXPECT_NE(where[1], where[2]);
  EXPECT_NE(where[0], std::this_thread::get_id());
  // Queued at stop: run all the same.
  p.RunOnWorker(1, [&](int64_t) { ++ran; });
  p.Stop();
  EXPECT_EQ(ran.load(), 16);
}

// One queue, one worker, one thread: the same results, the same order.
TEST(PipelineTest, RunToCompletion) {
  FakeIo in, out;
  ToyProcessor proc(1);
  PipelineOptions o = SmallOptions();
  o.run_to_completion = true;
  std::mutex mu;
  std::string status;
  o.on_status = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
  };
  Pipeline p(o, {&in}, &in, &proc);  // a TUN reads and writes on one fd
  p.Start();
  constexpr int kN = 500;
  for (int i = 0; i < kN; ++i) {
    // Flow 9 is handed off (to the only worker, itself); flows 0-4 are not.
    in.Inject(i % 7 == 3 ? Packet(9, uint16_t(i), 3) : Packet(uint8_t(i % 5), uint16_t(i)));
    if (i % 50 == 49) {
      ASSERT_TRUE(WaitFor([&] { return in.written_count() == size_t(i + 1); }));
    }
  }
  in.Inject(Packet(0, 0, 1));  // dropped
  in.Inject(Packet(0, 0, 2));  // status
  std::atomic<bool> task_ran{false};
  p.RunOnWorker(0, [&](int64_t) { task_ran = true; });
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !status.empty() && task_ran.load();
  }));
  p.Stop();
  std::map<int, int> last;
  size_t n = 0;
  for (const Bytes& b : in.TakeWritten()) {
    const int seq = b[1] << 8 | b[2];
    EXPECT_GT(seq, last.count(b[0]) ? last[b[0]] : -1) << "flow " << int(b[0]) << " reordered";
    last[b[0]] = seq;
    EXPECT_EQ(b[3], 0xAA);
    ++n;
  }
  EXPECT_EQ(n, size_t(kN));
  const PipelineTotals t = p.Totals();
  EXPECT_EQ(t.read, uint64_t(kN) + 2);
  EXPECT_EQ(t.written, uint64_t(kN));
  EXPECT_EQ(t.handed_off, uint64_t((kN + 3) / 7));
  EXPECT_EQ(t.dropped_by_processor, 1u);
  EXPECT_EQ(t.status, 1u);
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
  EXPECT_FALSE(proc.wrong_thread());
  EXPECT_NE(status.find("worker 0"), std::string::npos);
  // The thread keeps the buffers it freed for its next reads: one batch's
  // worth carried all 502 packets (the pool has 256).
  EXPECT_LE(in.distinct_buffers_read(), size_t(o.batch));
}

TEST(PipelineTest, DropsAndStatusReturnBuffers) {
  FakeIo in, out;
  ToyProcessor proc(2);
  std::mutex mu;
  std::string status;
  PipelineOptions o = SmallOptions();
  o.on_status = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
  };
  Pipeline p(o, {&in}, &out, &proc);
  p.Start();
  for (int i = 0; i < 50; ++i) in.Inject(Packet(uint8_t(i), 0, 1));  // dropped by the processor
  in.Inject(Packet(0, 0, 2));                                         // status
  in.Inject(Packet(1, 0, 0));                                         // written
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !status.empty() && out.written_count() == 1;
  }));
  p.Stop();
  EXPECT_NE(status.find("worker 0\n"), std::string::npos);
  EXPECT_NE(status.find("worker 1\n"), std::string::npos) << "every worker answers the status request";
  EXPECT_NE(status.find("pipeline.read"), std::string::npos);
  const PipelineTotals t = p.Totals();
  EXPECT_EQ(t.dropped_by_processor, 50u);
  EXPECT_EQ(t.status, 1u);
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
}

TEST(PipelineTest, RequestStatusReachesEveryWorker) {
  FakeIo in, out;
  ToyProcessor proc(4);
  std::atomic<int> calls{0};
  std::string last;
  std::mutex mu;
  PipelineOptions o = SmallOptions();
  o.on_status = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    last = s;
    ++calls;
  };
  Pipeline p(o, {&in}, &out, &proc);
  p.Start();
  p.RequestStatus();
  ASSERT_TRUE(WaitFor([&] { return calls.load() == 1; }));
  p.Stop();
  for (int w = 0; w < 4; ++w) EXPECT_NE(last.find("worker " + std::to_string(w)), std::string::npos);
}

TEST(PipelineTest, WriteFailuresAreCountedAndBuffersReturned) {
  FakeIo in, out;
  out.FailWrites(true);
  ToyProcessor proc(1);
  Pipeline p(SmallOptions(), {&in}, &out, &proc);
  p.Start();
  for (int i = 0; i < 40; ++i) in.Inject(Packet(0, uint16_t(i)));
  ASSERT_TRUE(WaitFor([&] { return p.Totals().drops[size_t(PipelineDrop::kWriteFailed)] == 40; }));
  p.Stop();
  EXPECT_EQ(p.Totals().pool_free_at_stop, p.Totals().pool_buffers);
}

TEST(PipelineTest, OverloadDropsWithNamedReasonsAndNeverLeaks) {
  FakeIo in, out;
  // A slow worker behind a tiny pool and queue: the reader must drop, not block.
  ToyProcessor proc(1, std::chrono::microseconds(2000));
  PipelineOptions o = SmallOptions();
  o.pool_buffers = 64;
  o.queue_depth = 16;
  Pipeline p(o, {&in}, &out, &proc);
  p.Start();
  constexpr int kSent = 3000;
  for (int i = 0; i < kSent; ++i) in.Inject(Packet(0, uint16_t(i)));
  ASSERT_TRUE(WaitFor([&] { return in.pending() == 0; }, 20000));
  p.Stop();  // stops while packets are still in flight
  const PipelineTotals t = p.Totals();
  const uint64_t dropped = t.drops[size_t(PipelineDrop::kPoolEmpty)] +
                           t.drops[size_t(PipelineDrop::kWorkerQueueFull)] +
                           t.drops[size_t(PipelineDrop::kWriterQueueFull)];
  EXPECT_EQ(t.read, uint64_t(kSent));
  EXPECT_GT(dropped, 0u) << "overload must drop";
  EXPECT_EQ(t.written + dropped, uint64_t(kSent)) << "every packet read is written or dropped with a reason";
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
}

TEST(PipelineTest, OversizedPacketIsTruncatedNotOverflowed) {
  FakeIo in, out;
  ToyProcessor proc(1);
  PipelineOptions o = SmallOptions();
  Pipeline p(o, {&in}, &out, &proc);
  p.Start();
  in.Inject(Packet(0, 0, 0, 1000));  // larger than the 256-byte buffers
  ASSERT_TRUE(WaitFor([&] { return out.written_count() == 1; }));
  p.Stop();
  EXPECT_EQ(out.TakeWritten()[0].size(), 256u);
}

}  // namespace
}  // namespace natd::tun

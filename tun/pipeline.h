// Pipeline: natd's threads, as designed.
//
//   TUN queue 0 ─ reader 0 ─┐                ┌─ worker 0 (shard 0) ─┐
//   TUN queue 1 ─ reader 1 ─┼─ per-worker  ──┼─ worker 1 (shard 1) ─┼─ writer queue ─ writer ─ TUN
//        ...                │  queues        │        ...           │
//
// - A reader takes free buffers from the pool in bulk, reads a batch from its
//   queue, asks the processor which worker each packet belongs to (a pure
//   function of the bytes), and enqueues in bulk with its own producer token.
// - A worker dequeues in bulk, lets the processor translate the batch in place,
//   hands what is to be written to the writer, returns drops to the pool, and
//   between batches lets the processor expire state. Nothing but its own
//   thread ever touches its shard.
// - A worker may hand a packet on to another worker (Disposition::kHandOff:
//   a hairpinned packet is translated outbound by its sender's worker, then
//   inbound by the worker owning its destination port). It goes into that
//   worker's queue, the one lock-free queue readers use too; on Stop, what is
//   still handed around after the workers end is finished on the stopping
//   thread.
// - A processor may keep a buffer for a while (Disposition::kHold: a fragment
//   waiting for its datagram's first one) and give it back later with its
//   disposition (TakeReleased, after each batch and tick; everything at stop).
// - The writer writes batches and returns the buffers to the pool.
// Every queue is bounded (by its capacity and by the pool); when one is full
// the packet is dropped and counted, never waited for. Packet order within a
// flow is kept: one flow enters by one TUN queue (the kernel hashes flows to
// queues), so one reader, one worker and the single writer see it in order.
//
// A status dump (a packet the processor marks kStatus, or RequestStatus())
// is collected from each worker on its own thread and handed to on_status.
//
// Run to completion (PipelineOptions::run_to_completion, one queue and one
// worker): a single thread reads a batch, translates it and writes it, with
// the same stages in the same order and no queue between them.
#ifndef NATD_TUN_PIPELINE_H_
#define NATD_TUN_PIPELINE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "concurrentqueue/blockingconcurrentqueue.h"
#include "tun/buffer_pool.h"
#include "tun/packet_io.h"
#include "tun/processor.h"

namespace natd::tun {

#define NATD_PIPELINE_DROPS(X)                                 \
  X(kPoolEmpty, "pool-empty")                                  \
  X(kWorkerQueueFull, "worker-queue-full")                     \
  X(kWriterQueueFull, "writer-queue-full")                     \
  X(kHandOffQueueFull, "hand-off-queue-full")                  \
  X(kWriteFailed, "write-failed")

enum class PipelineDrop : uint8_t {
#define NATD_PIPELINE_ENUM(name, text) name,
  NATD_PIPELINE_DROPS(NATD_PIPELINE_ENUM)
#undef NATD_PIPELINE_ENUM
      kCount
};
const char* PipelineDropName(PipelineDrop d);

struct PipelineOptions {
  uint32_t pool_buffers = 8192;
  uint32_t buffer_size = 2048;
  uint32_t batch = 64;
  uint32_t queue_depth = 4096;  // per worker, and for the writer
  // With one TUN queue and one worker: one thread reads, translates and
  // writes each batch itself (run to completion), with no hand-off between
  // threads — two cross-CPU wake-ups less per packet. The price: while it
  // translates nothing reads, so a slow batch backs up into the device's
  // queue rather than into ours.
  bool run_to_completion = false;
  // Write every packet buffer once at start, so that the pool is resident
  // from the first second (otherwise each buffer's pages become resident as
  // the first packet large enough to reach them lands there).
  bool prefault = false;
  // Called (from a worker thread) with the assembled status text.
  std::function<void(const std::string&)> on_status;
};

struct PipelineTotals {
  uint64_t read = 0, written = 0, processed = 0, dropped_by_processor = 0, status = 0, handed_off = 0;
  uint64_t held = 0, released = 0;  // buffers the processor kept (kHold), and gave back
  uint64_t drops[static_cast<size_t>(PipelineDrop::kCount)] = {};
  uint64_t pool_buffers = 0, pool_free_at_stop = 0;
};

class Pipeline {
 public:
  // `readers` (one per TUN queue) and `writer` must outlive the pipeline.
  Pipeline(const PipelineOptions& options, std::vector<PacketIo*> readers, PacketIo* writer,
           PacketProcessor* processor);
  ~Pipeline();

  void Start();
  // Stops reading, drains every queue through the workers and the writer,
  // joins the threads and returns every buffer to the pool.
  void Stop();
  void RequestStatus();
  // Runs `task` on worker w's thread between two batches (within the idle
  // wait, 50 ms, when no packets come), with the time it runs at: how the
  // control plane (PCP requests) reaches a worker's state without a lock
  // on the packet path. Tasks still queued at Stop run on the stopping
  // thread once the workers have ended.
  void RunOnWorker(uint32_t w, std::function<void(int64_t now_ms)> task);
  // Counters so far; after Stop() also the pool balance.
  PipelineTotals Totals() const;
  std::string CountersText() const;

 private:
  using Queue = moodycamel::BlockingConcurrentQueue<PacketBuf>;

  void ReaderLoop(uint32_t r);
  // Run to completion: reader, worker 0 and writer in one thread.
  void InlineLoop();
  // What one thread needs to finish batches for any worker: tokens for the
  // writer's queue and each worker's queue, and scratch vectors.
  struct BatchContext;
  class ReadStash;
  void WorkerLoop(uint32_t w);
  // Translates pkts[0, n) on worker w's shard and sends each where it goes.
  // n may be 0: then only what the processor lets go of is sent on.
  void FinishBatch(uint32_t w, BatchContext& ctx, size_t n, int64_t now_ms);
  // Stages each packet where its disposition sends it...
  void Route(BatchContext& ctx, PacketBuf* pkts, const Disposition* how, size_t n);
  // ...and sends what is staged.
  void Flush(BatchContext& ctx);
  // After the workers are joined: runs what is left in their queues.
  void DrainAfterWorkers();
  void WriterLoop();
  void CollectStatus(uint32_t w, int64_t now_ms);
  void Drop(PipelineDrop why, uint64_t n = 1) {
    drops_[static_cast<size_t>(why)].fetch_add(n, std::memory_order_relaxed);
  }

  const PipelineOptions opt_;
  std::vector<PacketIo*> readers_;
  PacketIo* const writer_io_;
  PacketProcessor* const proc_;
  BufferPool pool_;
  std::vector<std::unique_ptr<Queue>> worker_queues_;
  Queue writer_queue_;

  std::atomic<bool> stop_readers_{false};
  std::atomic<bool> stop_workers_{false};
  std::atomic<bool> stop_writer_{false};
  std::vector<std::thread> reader_threads_, worker_threads_;
  std::thread writer_thread_;
  bool started_ = false, stopped_ = false;
  bool inline_ = false;  // run to completion

  std::atomic<uint64_t> read_{0}, written_{0}, processed_{0}, dropped_by_processor_{0}, status_{0}, handed_off_{0},
      held_{0}, released_{0};
  std::atomic<uint64_t> drops_[static_cast<size_t>(PipelineDrop::kCount)] = {};
  uint64_t pool_free_at_stop_ = 0;

  // Control-plane tasks, per worker: the flag is all the packet path reads.
  struct Tasks {
    std::mutex mu;
    std::vector<std::function<void(int64_t)>> queued;
    std::atomic<bool> pending{false};
  };
  void RunTasks(uint32_t w, int64_t now_ms);
  std::vector<std::unique_ptr<Tasks>> tasks_;

  // Status collection: a generation number each worker answers once.
  std::atomic<uint64_t> status_generation_{0};
  std::mutex status_mu_;
  std::vector<std::string> status_parts_;
  uint32_t status_answers_ = 0;
  uint64_t status_collecting_ = 0;
};

}  // namespace natd::tun

#endif  // NATD_TUN_PIPELINE_H_

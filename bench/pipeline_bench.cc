// The dataplane's own cost per packet: reader -> worker -> writer through the
// bulk lock-free queues and the buffer pool, with no syscalls and no NAT
// (a generator device, a processor that writes everything, a counting sink).
// What is left is the handoff cost natd pays on top of the engine and the
// TUN's read()/write().
//
// Run: bazel run //bench:pipeline_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "tun/pipeline.h"

namespace natd::tun {
namespace {

// Hands out 64-byte packets as fast as asked, `total` in all.
class GeneratorIo final : public PacketIo {
 public:
  explicit GeneratorIo(uint64_t total) : left_(total) {}
  size_t ReadBatch(std::span<PacketBuf> bufs, uint32_t, const std::atomic<bool>& stop) override {
    size_t n = 0;
    while (n < bufs.size()) {
      uint64_t left = left_.load(std::memory_order_relaxed);
      if (left == 0) break;
      if (!left_.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) continue;
      std::memset(bufs[n].data, 0x45, 64);
      bufs[n].data[0] = uint8_t(left);  // spreads packets over workers
      bufs[n].len = 64;
      ++n;
    }
    if (n == 0 && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return n;
  }
  size_t WriteBatch(std::span<const PacketBuf> bufs) override {
    written_.fetch_add(bufs.size(), std::memory_order_relaxed);
    return bufs.size();
  }
  uint64_t written() const { return written_.load(); }

 private:
  std::atomic<uint64_t> left_;
  std::atomic<uint64_t> written_{0};
};

class PassThrough final : public PacketProcessor {
 public:
  explicit PassThrough(uint32_t workers) : workers_(workers) {}
  uint32_t workers() const override { return workers_; }
  uint32_t WorkerOf(const uint8_t* d, size_t) const override { return d[0] % workers_; }
  void Process(uint32_t, std::span<PacketBuf>, std::span<Disposition> out, int64_t) override {
    for (auto& o : out) o = Disposition::kWrite;
  }
  void Tick(uint32_t, int64_t) override {}
  void AppendStatus(uint32_t, std::string*, int64_t) override {}

 private:
  const uint32_t workers_;
};

void BM_PipelineHandoff(benchmark::State& state) {
  const uint32_t workers = uint32_t(state.range(0));
  constexpr uint64_t kPackets = 2'000'000;
  uint64_t lost = 0, written = 0;
  for (auto _ : state) {
    GeneratorIo io(kPackets);
    PassThrough proc(workers);
    PipelineOptions o;
    o.pool_buffers = 8192;
    o.buffer_size = 2048;
    Pipeline p(o, {&io}, &io, &proc);
    p.Start();
    auto dropped = [&] {
      const PipelineTotals t = p.Totals();
      uint64_t d = 0;
      for (uint64_t x : t.drops) d += x;
      return d;
    };
    while (io.written() + dropped() < kPackets) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    p.Stop();
    lost += kPackets - io.written();
    written += io.written();
  }
  // Packets that made it through; the generator outruns the workers, and the
  // rest are dropped at the bounded queues (counted, as in natd).
  state.SetItemsProcessed(int64_t(written));
  state.counters["dropped"] = double(lost) / double(state.iterations());
}
BENCHMARK(BM_PipelineHandoff)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace natd::tun

BENCHMARK_MAIN();

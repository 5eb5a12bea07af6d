// natd's dataplane and engine together, over an in-memory device: what the
// daemon wires up (tools/engine_processor.h), without root or a TUN.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "nat/engine.h"
#include "nat/testing/packet_builder.h"
#include "tools/engine_processor.h"
#include "tun/fake_io.h"
#include "tun/pipeline.h"

namespace natd {
namespace {

using testing::Be16;
using testing::Build;
using testing::Bytes;
using testing::PacketSpec;

PacketSpec Udp(int family, const std::string& src, const std::string& dst, uint16_t sport, uint16_t dport) {
  PacketSpec sp = testing::MakeSpec(family, src, dst, 17, sport, dport);
  sp.payload = {'h', 'i'};
  return sp;
}

bool WaitForWritten(tun::FakeIo& io, size_t n) {
  for (int i = 0; i < 1000 && io.written_count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return io.written_count() >= n;
}

class DataplaneTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(DataplaneTest, TranslatesBothWaysAcrossWorkers) {
  const uint32_t workers = GetParam();
  EngineConfig c;
  c.global4 = Ip4{};
  c.global6 = Ip6{};
  ASSERT_TRUE(ParseIp4("198.19.0.100", &*c.global4));
  ASSERT_TRUE(ParseIp6("2001:db8:19::100", &*c.global6));
  c.udp = *PresetByName("full-cone");
  c.shards = workers;
  c.max_sessions = 4096;
  NullEventSink sink;
  auto engine = Engine::Create(c, &sink);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EngineProcessor proc(engine->get(), 32, /*capacity=*/2048);  // the pool buffer size below
  tun::FakeIo q0, q1;
  tun::PipelineOptions o;
  o.pool_buffers = 256;
  o.queue_depth = 64;
  o.batch = 32;
  std::string status;
  std::mutex mu;
  o.on_status = [&](const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
  };
  tun::Pipeline pipeline(o, {&q0, &q1}, &q0, &proc);
  pipeline.Start();

  // Outbound from 40 inside endpoints, v4 and v6, over both queues.
  constexpr int kFlows = 40;
  for (int i = 0; i < kFlows; ++i) {
    (i % 2 ? q1 : q0).Inject(Build(Udp(4, "198.18.0.2", "198.19.0.2", uint16_t(20000 + i), 53)));
    (i % 2 ? q0 : q1).Inject(Build(Udp(6, "fd00:18::2", "2001:db8:19::2", uint16_t(20000 + i), 53)));
  }
  ASSERT_TRUE(WaitForWritten(q0, 2 * kFlows));
  std::vector<Bytes> out = q0.TakeWritten();
  ASSERT_EQ(out.size(), size_t(2 * kFlows));
  for (const Bytes& p : out) {
    ASSERT_TRUE(testing::OracleChecksumsValid(p));
    const bool v4 = (p[0] >> 4) == 4;
    const size_t l4 = v4 ? 20 : 40;
    // Full-cone preserves the inside port: the reply goes to the same number.
    const uint16_t ext = Be16(p, l4);
    EXPECT_GE(ext, 20000);
    EXPECT_LT(ext, 20000 + kFlows);
    q1.Inject(v4 ? Build(Udp(4, "198.19.0.2", "198.19.0.100", 53, ext))
                 : Build(Udp(6, "2001:db8:19::2", "2001:db8:19::100", 53, ext)));
  }
  ASSERT_TRUE(WaitForWritten(q0, 2 * kFlows));
  for (const Bytes& p : q0.TakeWritten()) {
    ASSERT_TRUE(testing::OracleChecksumsValid(p));
    const bool v4 = (p[0] >> 4) == 4;
    const Bytes inside4 = {198, 18, 0, 2};
    const Bytes inside6 = {0xfd, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    EXPECT_EQ(Bytes(p.begin() + (v4 ? 16 : 24), p.begin() + (v4 ? 20 : 40)), v4 ? inside4 : inside6);
  }
  // A packet to 192.0.2.2 asks every worker for its part of the status.
  q1.Inject(Build(Udp(4, "198.18.0.2", "192.0.2.2", 1, 1)));
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!status.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pipeline.Stop();
  for (uint32_t w = 0; w < workers; ++w) EXPECT_NE(status.find("shard " + std::to_string(w) + "\n"), std::string::npos);
  EXPECT_NE(status.find("198.18.0.2:20000 -> 198.19.0.100:20000"), std::string::npos) << status;
  const tun::PipelineTotals t = pipeline.Totals();
  EXPECT_EQ(t.written, uint64_t(4 * kFlows));
  EXPECT_EQ(t.pool_free_at_stop, t.pool_buffers);
  uint64_t translated = 0;
  for (uint32_t w = 0; w < workers; ++w) {
    translated += (*engine)->shard(w).counters().packets_out.value() + (*engine)->shard(w).counters().packets_in.value();
  }
  EXPECT_EQ(translated, uint64_t(4 * kFlows));
}

INSTANTIATE_TEST_SUITE_P(Workers, DataplaneTest, ::testing::Values(1u, 2u, 3u));

}  // namespace
}  // namespace natd

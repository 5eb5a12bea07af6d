// Every fixture's input cut at every length, each cut given in a heap buffer
// of exactly that length so ASan reports any read past it: parsing and the
// shard must refuse it as malformed and leave its bytes alone.
#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/packet_view.h"
#include "nat/testing/fixtures.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Bytes;
using testing::Fixture;

// A heap copy of p[0, n) with nothing after it.
std::unique_ptr<uint8_t[]> ExactCopy(const Bytes& p, size_t n) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
  if (n) std::memcpy(buf.get(), p.data(), n);
  return buf;
}

class TruncationTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(TruncationTest, EveryCutIsDroppedAsMalformed) {
  const Fixture& f = GetParam();
  NullEventSink sink;
  auto engine = Engine::Create(testing::FixtureConfig(), &sink);
  ASSERT_TRUE(engine.ok()) << engine.status();
  Shard& shard = (*engine)->shard(0);
  // With the fixture's state in place, so a cut that parsed would reach the
  // tables it was meant for.
  for (const Bytes& s : f.setup) {
    auto buf = ExactCopy(s, s.size());
    ASSERT_EQ(shard.ProcessOne(buf.get(), uint32_t(s.size()), 0).action, Action::kForward);
  }
  // Any IPv4 packet of 20 bytes or more addressed to 192.0.2.2 is a status
  // request, checked before parsing, however short it is.
  const bool status = f.verdict.action == Action::kStatus;

  for (size_t n = 0; n < f.input.size(); ++n) {
    SCOPED_TRACE(::testing::Message() << "cut at " << n << " of " << f.input.size());
    auto parse_buf = ExactCopy(f.input, n);
    PacketView v;
    const DropReason parsed = ParsePacket(parse_buf.get(), n, &v);
    EXPECT_TRUE(IsMalformed(parsed)) << DropReasonName(parsed);

    auto buf = ExactCopy(f.input, n);
    const Verdict verdict = shard.ProcessOne(buf.get(), uint32_t(n), 0);
    if (status && n >= 20) {
      EXPECT_EQ(verdict.action, Action::kStatus);
    } else {
      EXPECT_EQ(verdict.action, Action::kDrop);
      EXPECT_TRUE(IsMalformed(verdict.reason)) << DropReasonName(verdict.reason);
      EXPECT_EQ(verdict.reason, parsed);
    }
    EXPECT_EQ(std::memcmp(buf.get(), f.input.data(), n), 0) << "a refused packet was modified";
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, TruncationTest, ::testing::ValuesIn(testing::AllFixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) { return info.param.name; });

}  // namespace
}  // namespace natd

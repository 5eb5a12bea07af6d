// LookupFloor must do natd's translation, or its timing means nothing: every
// packet of the walk it translates is compared, byte for byte, with what
// natd's shard makes of the same packet; and what the floor does not know
// (another protocol, a session it did not learn) it leaves alone.
#include "bench/lookup_floor.h"

#include <gtest/gtest.h>

#include <vector>

#include "nat/testing/packet_builder.h"

namespace natd::bench {
namespace {

// More sessions than the port space, so that keys differ in the remote end
// too (session i's remote is i / 64512).
constexpr uint32_t kSessions = kPorts + 4000;
constexpr uint32_t kBatch = 64;

template <int kFamily>
void ExpectLayoutMatchesNatd(Workload& w, uint8_t proto, FloorLayout layout) {
  LookupFloor<kFamily> floor(w, proto, layout);
  ASSERT_TRUE(floor.ok());
  for (size_t k = 0; k < 64 * kBatch; k += kBatch) {
    std::span<PacketRef> refs = w.FillBatch(k, kBatch);
    std::vector<testing::Bytes> want;
    std::vector<uint16_t> header_sum;
    for (const PacketRef& p : refs) {
      header_sum.push_back(testing::OracleSum(p.data, 20));
      testing::Bytes b(p.data, p.data + p.len);
      ASSERT_EQ(w.shard().ProcessOne(b.data(), uint32_t(b.size()), 2).action, Action::kForward);
      want.push_back(b);
    }
    ASSERT_EQ(floor.Translate(refs, 2), int(kBatch));
    for (size_t i = 0; i < refs.size(); ++i) {
      ASSERT_EQ(testing::Bytes(refs[i].data, refs[i].data + refs[i].len), want[i]) << "packet " << k + i;
      // The walk's packets are patched into a template without fixing their
      // checksums; an incremental update (RFC 1624) keeps the header's sum,
      // whatever it was, and a wrong one would not.
      if (kFamily == 4) {
        EXPECT_EQ(testing::OracleSum(refs[i].data, 20), header_sum[i]) << "IPv4 header sum, packet " << k + i;
      }
    }
  }
}

// Both layouts, over one workload.
template <int kFamily>
void ExpectNatdOutput(uint8_t proto) {
  Workload w(kFamily, proto, kSessions);
  ASSERT_TRUE(w.ok());
  for (FloorLayout layout : {FloorLayout::kIndexed, FloorLayout::kInline}) {
    SCOPED_TRACE(layout == FloorLayout::kIndexed ? "indexed" : "inline");
    ExpectLayoutMatchesNatd<kFamily>(w, proto, layout);
  }
}

TEST(LookupFloor, TranslatesAsNatdDoesIpv4Udp) { ExpectNatdOutput<4>(kProtoUdp); }
TEST(LookupFloor, TranslatesAsNatdDoesIpv4Tcp) { ExpectNatdOutput<4>(kProtoTcp); }
TEST(LookupFloor, TranslatesAsNatdDoesIpv6Udp) { ExpectNatdOutput<6>(kProtoUdp); }
TEST(LookupFloor, TranslatesAsNatdDoesIpv6Tcp) { ExpectNatdOutput<6>(kProtoTcp); }

TEST(LookupFloor, LeavesWhatItDoesNotKnow) {
  Workload w(4, kProtoUdp, 1000);
  ASSERT_TRUE(w.ok());
  for (FloorLayout layout : {FloorLayout::kIndexed, FloorLayout::kInline}) {
    LookupFloor<4> floor(w, kProtoUdp, layout);
    ASSERT_TRUE(floor.ok());
    // A session it never learned (the workload has 1000), and a TCP packet.
    testing::Bytes unknown = w.PacketOf(5000);
    testing::Bytes tcp = testing::Build(testing::MakeSpec(4, "10.0.0.1", "198.19.0.2", kProtoTcp, 1024, 443));
    const testing::Bytes unknown_before = unknown, tcp_before = tcp;
    PacketRef refs[2] = {PacketRef{unknown.data(), uint32_t(unknown.size()), 0, false, false},
                         PacketRef{tcp.data(), uint32_t(tcp.size()), 0, false, false}};
    EXPECT_EQ(floor.Translate(std::span(refs, 2), 1), 0);
    EXPECT_EQ(unknown, unknown_before);
    EXPECT_EQ(tcp, tcp_before);
  }
}

}  // namespace
}  // namespace natd::bench

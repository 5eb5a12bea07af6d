// ParsePacket: the fields and offsets it finds for every kind of packet, the
// IPv6 extension-header walk, fragments, and every drop reason parsing can
// produce, each from a crafted packet.
#include "nat/packet_view.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "nat/drop_reason.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Build;
using testing::BuildIcmpError;
using testing::Bytes;
using testing::PacketSpec;

constexpr char kA4[] = "198.18.0.2";
constexpr char kB4[] = "203.0.113.7";
constexpr char kA6[] = "fd00:18::2";
constexpr char kB6[] = "2001:db8:beef::7";

PacketSpec Spec(int family, uint8_t proto, uint16_t sport = 40000, uint16_t dport = 443, size_t payload = 0) {
  PacketSpec s;
  s.family = family;
  s.src = family == 4 ? kA4 : kA6;
  s.dst = family == 4 ? kB4 : kB6;
  s.proto = proto;
  s.sport = sport;
  s.dport = dport;
  if (proto == kProtoIcmp6) s.icmp_type = 128;
  s.payload.assign(payload, 0xab);
  return s;
}

// Parses a copy held in a heap buffer of exactly the packet's size.
DropReason Parse(const Bytes& p, PacketView* v) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[p.size() + (p.empty() ? 1 : 0)]);
  if (!p.empty()) std::memcpy(buf.get(), p.data(), p.size());
  return ParsePacket(buf.get(), p.size(), v);
}

DropReason ParseReason(const Bytes& p) {
  PacketView v;
  return Parse(p, &v);
}

void Put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = uint8_t(v >> 8);
  b[off + 1] = uint8_t(v);
}

// Cuts an IP packet to n bytes and makes its length field agree, so the
// packet is consistently short (rather than failing on total length).
Bytes Shorten(Bytes p, size_t n) {
  p.resize(n);
  if ((p[0] >> 4) == 4) {
    Put16(p, 2, uint16_t(n));
  } else {
    Put16(p, 4, uint16_t(n - 40));
  }
  return p;
}

::testing::AssertionResult Parses(const Bytes& p, PacketView* v) {
  DropReason r = Parse(p, v);
  if (r == DropReason::kNone) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "dropped: " << DropReasonName(r) << "\n" << testing::Hex(p);
}

// --- What a successful parse finds ---------------------------------------

TEST(PacketViewTest, Ipv4TcpWithOptions) {
  PacketSpec s = Spec(4, kProtoTcp, 40000, 443, 5);
  s.tcp_flags = kTcpSyn | kTcpAck;
  s.ip_options = {0x94, 0x04, 0x00, 0x00};
  const Bytes p = Build(s);
  PacketView v;
  ASSERT_TRUE(Parses(p, &v));
  EXPECT_EQ(v.len, 24u + 20 + 5);
  EXPECT_EQ(v.family, 4);
  EXPECT_EQ(v.proto, kProtoTcp);
  EXPECT_EQ(v.kind, L4Kind::kTcp);
  EXPECT_FALSE(v.fragment);
  EXPECT_EQ(v.l4, 24);
  EXPECT_EQ(v.src_port, 40000);
  EXPECT_EQ(v.dst_port, 443);
  EXPECT_EQ(v.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(v.src_addr_offset(), 12);
  EXPECT_EQ(v.dst_addr_offset(), 16);
  EXPECT_EQ(v.remote_port_of(v.dst_port), 443);
}

TEST(PacketViewTest, Ipv4Udp) {
  const Bytes p = Build(Spec(4, kProtoUdp, 5353, 53, 3));
  PacketView v;
  ASSERT_TRUE(Parses(p, &v));
  EXPECT_EQ(v.len, 20u + 8 + 3);
  EXPECT_EQ(v.kind, L4Kind::kUdp);
  EXPECT_EQ(v.proto, kProtoUdp);
  EXPECT_EQ(v.l4, 20);
  EXPECT_EQ(v.src_port, 5353);
  EXPECT_EQ(v.dst_port, 53);
  EXPECT_EQ(v.tcp_flags, 0);
}

TEST(PacketViewTest, Ipv6TcpAndUdp) {
  PacketSpec s = Spec(6, kProtoTcp, 1234, 80);
  s.tcp_flags = kTcpFin | kTcpAck;
  PacketView v;
  ASSERT_TRUE(Parses(Build(s), &v));
  EXPECT_EQ(v.family, 6);
  EXPECT_EQ(v.len, 60u);
  EXPECT_EQ(v.kind, L4Kind::kTcp);
  EXPECT_EQ(v.l4, 40);
  EXPECT_EQ(v.src_port, 1234);
  EXPECT_EQ(v.dst_port, 80);
  EXPECT_EQ(v.tcp_flags, kTcpFin | kTcpAck);
  EXPECT_EQ(v.src_addr_offset(), 8);
  EXPECT_EQ(v.dst_addr_offset(), 24);

  ASSERT_TRUE(Parses(Build(Spec(6, kProtoUdp, 7, 8, 1)), &v));
  EXPECT_EQ(v.kind, L4Kind::kUdp);
  EXPECT_EQ(v.len, 40u + 8 + 1);
  EXPECT_EQ(v.src_port, 7);
  EXPECT_EQ(v.dst_port, 8);
}

TEST(PacketViewTest, EchoIdentifierIsBothPorts) {
  for (int family : {4, 6}) {
    for (bool request : {true, false}) {
      PacketSpec s = Spec(family, family == 4 ? kProtoIcmp : kProtoIcmp6, 0x4321, 0, 9);
      s.icmp_type = family == 4 ? (request ? 8 : 0) : (request ? 128 : 129);
      s.icmp_seq = 99;
      PacketView v;
      ASSERT_TRUE(Parses(Build(s), &v)) << family;
      EXPECT_EQ(v.kind, L4Kind::kEcho);
      EXPECT_EQ(v.icmp_type, s.icmp_type);
      EXPECT_EQ(v.icmp_code, 0);
      EXPECT_EQ(v.src_port, 0x4321);
      EXPECT_EQ(v.dst_port, 0x4321);
      EXPECT_EQ(v.remote_port_of(v.dst_port), 0);  // echo has no remote port
    }
  }
}

// Bytes after the IP length (link padding) are not part of the packet.
TEST(PacketViewTest, LengthIsTheIpLengthNotTheBuffer) {
  for (int family : {4, 6}) {
    Bytes p = Build(Spec(family, kProtoUdp, 1, 2, 4));
    const uint32_t ip_len = uint32_t(p.size());
    p.insert(p.end(), {1, 2, 3, 4, 5});
    PacketView v;
    ASSERT_TRUE(Parses(p, &v));
    EXPECT_EQ(v.len, ip_len);
  }
}

// A UDP length shorter than what IP carries is fine (trailing bytes).
TEST(PacketViewTest, UdpLengthBelowIpPayloadIsAccepted) {
  Bytes p = Build(Spec(4, kProtoUdp, 1, 2, 10));
  Put16(p, 20 + 4, 8 + 4);
  PacketView v;
  ASSERT_TRUE(Parses(p, &v));
  EXPECT_EQ(v.kind, L4Kind::kUdp);
}

// --- IPv6 extension headers ----------------------------------------------

TEST(PacketViewTest, WalksExtensionHeaders) {
  const std::vector<std::vector<uint8_t>> chains = {
      {0}, {43}, {60}, {0, 60}, {0, 43, 60}, {0, 60, 43, 60, 60, 43, 60, 60},  // 8: the most allowed
  };
  for (const auto& chain : chains) {
    PacketSpec s = Spec(6, kProtoUdp, 1000, 2000, 3);
    s.ext_headers = chain;
    PacketView v;
    ASSERT_TRUE(Parses(Build(s), &v)) << chain.size();
    EXPECT_EQ(v.l4, 40 + 8 * chain.size());
    EXPECT_EQ(v.proto, kProtoUdp);
    EXPECT_EQ(v.kind, L4Kind::kUdp);
    EXPECT_EQ(v.src_port, 1000);
    EXPECT_EQ(v.dst_port, 2000);
    EXPECT_FALSE(v.fragment);
  }
}

// Hdr Ext Len counts 8-byte units beyond the first.
TEST(PacketViewTest, LongerExtensionHeader) {
  PacketSpec s = Spec(6, kProtoTcp, 1, 2);
  s.ext_headers = {60};
  Bytes p = Build(s);
  p[40 + 1] = 1;                   // 16 bytes
  p.insert(p.begin() + 48, 8, 0);  // eight Pad1 options
  Put16(p, 4, uint16_t(p.size() - 40));
  PacketView v;
  ASSERT_TRUE(Parses(p, &v));
  EXPECT_EQ(v.l4, 56);
  EXPECT_EQ(v.kind, L4Kind::kTcp);
  EXPECT_EQ(v.src_port, 1);
}

TEST(PacketViewTest, TooManyExtensionHeaders) {
  PacketSpec s = Spec(6, kProtoUdp);
  s.ext_headers.assign(9, 60);
  EXPECT_EQ(ParseReason(Build(s)), DropReason::kTooManyExtHeaders);
}

// --- Fragments -------------------------------------------------------------

TEST(PacketViewTest, Ipv6AtomicFragmentIsNotAFragment) {
  PacketSpec s = Spec(6, kProtoUdp, 1111, 2222, 5);
  s.ext_headers = {44};  // offset 0, M=0
  PacketView v;
  ASSERT_TRUE(Parses(Build(s), &v));
  EXPECT_FALSE(v.fragment);
  EXPECT_EQ(v.kind, L4Kind::kUdp);
  EXPECT_EQ(v.l4, 48);
  EXPECT_EQ(v.src_port, 1111);
}

TEST(PacketViewTest, Ipv6Fragments) {
  PacketSpec s = Spec(6, kProtoUdp, 1111, 2222, 16);
  s.ext_headers = {0, 44};
  Bytes first = Build(s);
  first[48 + 3] |= 1;  // M
  first[48 + 4] = 0xab;  // identification 0xab000000
  PacketView v;
  ASSERT_TRUE(Parses(first, &v));
  EXPECT_TRUE(v.fragment);
  EXPECT_FALSE(v.later_fragment);
  EXPECT_EQ(v.frag_id, 0xab000000u);
  EXPECT_EQ(v.proto, kProtoUdp);
  EXPECT_EQ(v.kind, L4Kind::kUdp);  // a first fragment is parsed to its L4 header
  EXPECT_EQ(v.src_port, 1111);
  EXPECT_EQ(v.dst_port, 2222);
  // Its UDP length covers the whole datagram, more than is here.
  Bytes longer = first;
  Put16(longer, 56 + 4, 1000);
  ASSERT_TRUE(Parses(longer, &v));
  EXPECT_EQ(v.kind, L4Kind::kUdp);
  // Too short for the UDP header: a tiny fragment, not malformed.
  Bytes tiny = Shorten(first, 56 + 4);
  Put16(tiny, 4, uint16_t(tiny.size() - 40));
  EXPECT_EQ(ParsePacket(tiny.data(), tiny.size(), &v), DropReason::kTinyFragment);
  EXPECT_FALSE(IsMalformed(DropReason::kTinyFragment));

  // A later fragment carries no L4 header at all; its bytes are not read.
  Bytes later = Build(s);
  Put16(later, 48 + 2, 3 << 3);  // offset 24 bytes, M=0
  later = Shorten(later, 56 + 3);
  ASSERT_TRUE(Parses(later, &v));
  EXPECT_TRUE(v.fragment);
  EXPECT_TRUE(v.later_fragment);
  EXPECT_EQ(v.kind, L4Kind::kNone);
}

TEST(PacketViewTest, Ipv4Fragments) {
  Bytes mf = Build(Spec(4, kProtoTcp, 1, 2, 8));
  mf[6] = 0x20;  // MF, offset 0
  PacketView v;
  ASSERT_TRUE(Parses(mf, &v));
  EXPECT_TRUE(v.fragment);
  EXPECT_FALSE(v.later_fragment);
  EXPECT_EQ(v.frag_id, 0x1234u);
  EXPECT_EQ(v.kind, L4Kind::kTcp);
  EXPECT_EQ(v.src_port, 1);
  EXPECT_EQ(v.proto, kProtoTcp);

  Bytes later = Build(Spec(4, kProtoTcp, 1, 2, 8));
  Put16(later, 6, 0x0003);         // offset 24 bytes, MF clear
  later = Shorten(later, 20 + 3);  // too short for TCP, but not read
  ASSERT_TRUE(Parses(later, &v));
  EXPECT_TRUE(v.fragment);
  EXPECT_TRUE(v.later_fragment);
  EXPECT_EQ(v.kind, L4Kind::kNone);

  Bytes df = Build(Spec(4, kProtoTcp, 1, 2, 8));
  df[6] = 0x40;  // DF only: a whole packet
  ASSERT_TRUE(Parses(df, &v));
  EXPECT_FALSE(v.fragment);
  EXPECT_EQ(v.kind, L4Kind::kTcp);
}

// --- ICMP errors and their quotes -----------------------------------------

TEST(PacketViewTest, Ipv4ErrorQuotingUdpWithOptions) {
  PacketSpec inner = Spec(4, kProtoUdp, 40001, 53, 10);
  inner.ip_options = {0x01, 0x01, 0x01, 0x00};
  const Bytes quoted = Build(inner);
  const Bytes p = BuildIcmpError(4, kB4, kA4, 3, 3, quoted, 24 + 8);
  PacketView v;
  ASSERT_TRUE(Parses(p, &v));
  EXPECT_EQ(v.kind, L4Kind::kError);
  EXPECT_EQ(v.proto, kProtoIcmp);
  EXPECT_EQ(v.icmp_type, 3);
  EXPECT_EQ(v.icmp_code, 3);
  EXPECT_EQ(v.l4, 20);
  EXPECT_EQ(v.len, 20u + 8 + 24 + 8);
  EXPECT_EQ(v.quote.l3, 28);
  EXPECT_EQ(v.quote.l4, 28 + 24);
  EXPECT_EQ(v.quote.end, v.len);
  EXPECT_EQ(v.quote.proto, kProtoUdp);
  EXPECT_EQ(v.quote.kind, L4Kind::kUdp);
  EXPECT_EQ(v.quote.src_port, 40001);
  EXPECT_EQ(v.quote.dst_port, 53);
}

TEST(PacketViewTest, Ipv4ErrorQuotingTcpAndEcho) {
  PacketView v;
  // Time Exceeded with only 8 bytes of TCP.
  ASSERT_TRUE(Parses(BuildIcmpError(4, kB4, kA4, 11, 0, Build(Spec(4, kProtoTcp, 40000, 443)), 28), &v));
  EXPECT_EQ(v.icmp_type, 11);
  EXPECT_EQ(v.quote.kind, L4Kind::kTcp);
  EXPECT_EQ(v.quote.proto, kProtoTcp);
  EXPECT_EQ(v.quote.l4, 48);
  EXPECT_EQ(v.quote.end, 56u);
  EXPECT_EQ(v.quote.src_port, 40000);
  EXPECT_EQ(v.quote.dst_port, 443);
  // Parameter Problem quoting an echo request.
  ASSERT_TRUE(Parses(BuildIcmpError(4, kB4, kA4, 12, 0, Build(Spec(4, kProtoIcmp, 0x4321, 0, 4))), &v));
  EXPECT_EQ(v.icmp_type, 12);
  EXPECT_EQ(v.quote.kind, L4Kind::kEcho);
  EXPECT_EQ(v.quote.proto, kProtoIcmp);
  EXPECT_EQ(v.quote.src_port, 0x4321);
  EXPECT_EQ(v.quote.dst_port, 0x4321);
  EXPECT_EQ(v.src_port, 0);  // the outer packet has no ports of its own
}

TEST(PacketViewTest, Ipv6ErrorsQuotingEveryKind) {
  PacketSpec udp = Spec(6, kProtoUdp, 40001, 53, 7);
  udp.ext_headers = {0, 60};
  PacketView v;
  // Packet Too Big (MTU 1280) quoting UDP behind two extension headers.
  ASSERT_TRUE(Parses(BuildIcmpError(6, kB6, kA6, 2, 0, Build(udp), 0, 1280), &v));
  EXPECT_EQ(v.kind, L4Kind::kError);
  EXPECT_EQ(v.proto, kProtoIcmp6);
  EXPECT_EQ(v.icmp_type, 2);
  EXPECT_EQ(v.quote.l3, 48);
  EXPECT_EQ(v.quote.l4, 48 + 40 + 16);
  EXPECT_EQ(v.quote.proto, kProtoUdp);
  EXPECT_EQ(v.quote.kind, L4Kind::kUdp);
  EXPECT_EQ(v.quote.src_port, 40001);
  EXPECT_EQ(v.quote.dst_port, 53);
  EXPECT_EQ(v.quote.end, v.len);

  for (uint8_t type : {1, 3, 4}) {
    ASSERT_TRUE(Parses(BuildIcmpError(6, kB6, kA6, type, 0, Build(Spec(6, kProtoTcp, 40000, 443))), &v));
    EXPECT_EQ(v.icmp_type, type);
    EXPECT_EQ(v.quote.kind, L4Kind::kTcp);
    EXPECT_EQ(v.quote.l4, 48 + 40);
    EXPECT_EQ(v.quote.src_port, 40000);
  }
  ASSERT_TRUE(Parses(BuildIcmpError(6, kB6, kA6, 3, 0, Build(Spec(6, kProtoIcmp6, 0x1234, 0))), &v));
  EXPECT_EQ(v.quote.kind, L4Kind::kEcho);
  EXPECT_EQ(v.quote.proto, kProtoIcmp6);
  EXPECT_EQ(v.quote.src_port, 0x1234);
}

// A quoted first fragment still has its ports.
TEST(PacketViewTest, QuotedFirstFragmentIsTranslatable) {
  Bytes inner = Build(Spec(4, kProtoUdp, 40001, 53, 8));
  inner[6] = 0x20;  // MF
  PacketView v;
  ASSERT_TRUE(Parses(BuildIcmpError(4, kB4, kA4, 11, 1, inner), &v));
  EXPECT_EQ(v.quote.kind, L4Kind::kUdp);
  EXPECT_EQ(v.quote.src_port, 40001);
}

// --- Every drop reason parsing can produce ---------------------------------

struct Bad {
  std::string name;
  Bytes packet;
  DropReason reason;
};

std::vector<Bad> BadPackets() {
  std::vector<Bad> out;
  const Bytes udp4 = Build(Spec(4, kProtoUdp, 1, 2, 4));
  const Bytes tcp4 = Build(Spec(4, kProtoTcp, 1, 2));
  const Bytes udp6 = Build(Spec(6, kProtoUdp, 1, 2, 4));
  const Bytes tcp6 = Build(Spec(6, kProtoTcp, 1, 2));
  const Bytes echo4 = Build(Spec(4, kProtoIcmp, 7, 0, 4));
  const Bytes echo6 = Build(Spec(6, kProtoIcmp6, 7, 0, 4));
  auto with = [](Bytes p, size_t off, uint8_t value) {
    p[off] = value;
    return p;
  };
  auto with16 = [](Bytes p, size_t off, uint16_t value) {
    Put16(p, off, value);
    return p;
  };
  auto err4 = [](const Bytes& quoted, size_t n = 0) { return BuildIcmpError(4, kB4, kA4, 11, 0, quoted, n); };
  auto err6 = [](const Bytes& quoted, size_t n = 0) { return BuildIcmpError(6, kB6, kA6, 3, 0, quoted, n); };

  out.push_back({"empty", {}, DropReason::kEmpty});
  out.push_back({"version5", with(udp4, 0, 0x55), DropReason::kBadIpVersion});
  out.push_back({"version0", with(udp4, 0, 0x05), DropReason::kBadIpVersion});
  out.push_back({"one_byte", {0x45}, DropReason::kTruncatedIpHeader});
  out.push_back({"ip4_header_19", Bytes(udp4.begin(), udp4.begin() + 19), DropReason::kTruncatedIpHeader});
  out.push_back({"ip6_header_39", Bytes(udp6.begin(), udp6.begin() + 39), DropReason::kTruncatedIpHeader});
  out.push_back({"ihl_4", with(udp4, 0, 0x44), DropReason::kBadIhl});
  out.push_back({"ihl_beyond_total", with(udp4, 0, 0x4f), DropReason::kBadIhl});  // 60 > 32
  out.push_back({"total_beyond_buffer", with16(udp4, 2, uint16_t(udp4.size() + 1)), DropReason::kBadTotalLength});
  out.push_back({"total_19", with16(udp4, 2, 19), DropReason::kBadTotalLength});
  out.push_back(
      {"payload_length_beyond_buffer", with16(udp6, 4, uint16_t(udp6.size() - 40 + 1)), DropReason::kBadTotalLength});

  PacketSpec ext = Spec(6, kProtoUdp, 1, 2);
  ext.ext_headers = {0};
  out.push_back({"ext_header_cut", Shorten(Build(ext), 44), DropReason::kTruncatedExtHeader});
  out.push_back({"ext_header_length_beyond", with(Build(ext), 41, 2), DropReason::kTruncatedExtHeader});
  ext.ext_headers = {44};
  out.push_back({"fragment_header_cut", Shorten(Build(ext), 47), DropReason::kTruncatedExtHeader});
  ext.ext_headers.assign(9, 0);
  out.push_back({"nine_ext_headers", Build(ext), DropReason::kTooManyExtHeaders});

  out.push_back({"tcp4_19", Shorten(tcp4, 39), DropReason::kTruncatedL4Header});
  out.push_back({"tcp6_19", Shorten(tcp6, 59), DropReason::kTruncatedL4Header});
  out.push_back({"udp_7", Shorten(udp4, 27), DropReason::kTruncatedL4Header});
  out.push_back({"icmp_7", Shorten(echo4, 27), DropReason::kTruncatedL4Header});
  out.push_back({"icmp6_7", Shorten(echo6, 47), DropReason::kTruncatedL4Header});
  out.push_back({"tcp_data_offset_4", with(tcp4, 32, 4 << 4), DropReason::kBadTcpDataOffset});
  out.push_back({"tcp_data_offset_0", with(tcp6, 52, 0), DropReason::kBadTcpDataOffset});
  out.push_back({"tcp_data_offset_beyond", with(tcp4, 32, 6 << 4), DropReason::kBadTcpDataOffset});
  out.push_back({"udp_length_0", with16(udp4, 24, 0), DropReason::kBadUdpLength});
  out.push_back({"udp_length_7", with16(udp6, 44, 7), DropReason::kBadUdpLength});
  out.push_back({"udp_length_beyond", with16(udp4, 24, 8 + 4 + 1), DropReason::kBadUdpLength});

  // Quotes too short to translate.
  out.push_back({"quote_empty", Shorten(err4(udp4), 28), DropReason::kTruncatedQuote});
  out.push_back({"quote_ip4_10", err4(udp4, 10), DropReason::kTruncatedQuote});
  out.push_back({"quote_l4_7", err4(udp4, 27), DropReason::kTruncatedQuote});
  out.push_back({"quote_ip6_39", err6(udp6, 39), DropReason::kTruncatedQuote});
  out.push_back({"quote_l4_7_v6", err6(tcp6, 47), DropReason::kTruncatedQuote});
  PacketSpec quoted_ext = Spec(6, kProtoUdp, 1, 2);
  quoted_ext.ext_headers = {0, 60};
  out.push_back({"quote_ext_header_cut", err6(Build(quoted_ext), 52), DropReason::kTruncatedQuote});

  // Quotes that cannot be translated.
  out.push_back({"quote_v6_in_v4", err4(udp6), DropReason::kBadQuote});
  out.push_back({"quote_v4_in_v6", err6(udp4), DropReason::kBadQuote});
  out.push_back({"quote_of_error", err4(err4(udp4)), DropReason::kBadQuote});
  out.push_back({"quote_of_error_v6", err6(err6(udp6)), DropReason::kBadQuote});
  out.push_back({"quote_ihl_4", err4(with(udp4, 0, 0x44)), DropReason::kBadQuote});
  out.push_back({"quote_later_fragment", err4(with16(udp4, 6, 0x0001)), DropReason::kBadQuote});
  PacketSpec gre = Spec(4, 47, 0, 0, 8);
  out.push_back({"quote_gre", err4(Build(gre)), DropReason::kBadQuote});
  PacketSpec timestamp = Spec(4, kProtoIcmp, 1, 0, 12);
  timestamp.icmp_type = 13;
  out.push_back({"quote_icmp_timestamp", err4(Build(timestamp)), DropReason::kBadQuote});
  out.push_back({"quote_icmp_in_v6", err6(with(udp6, 6, kProtoIcmp)), DropReason::kBadQuote});
  quoted_ext.ext_headers.assign(9, 60);
  out.push_back({"quote_nine_ext_headers", err6(Build(quoted_ext)), DropReason::kBadQuote});

  // Not malformed, but not translatable either.
  out.push_back({"gre4", Build(Spec(4, 47, 0, 0, 8)), DropReason::kUnsupportedProtocol});
  out.push_back({"gre6", Build(Spec(6, 47, 0, 0, 8)), DropReason::kUnsupportedProtocol});
  out.push_back({"icmp6_in_ipv4", with(echo4, 9, kProtoIcmp6), DropReason::kUnsupportedProtocol});
  out.push_back({"icmp_in_ipv6", with(echo6, 6, kProtoIcmp), DropReason::kUnsupportedProtocol});
  out.push_back({"icmp_timestamp", Build(timestamp), DropReason::kUnsupportedIcmpType});
  out.push_back({"icmp_redirect", with(echo4, 20, 5), DropReason::kUnsupportedIcmpType});
  out.push_back({"icmp6_neighbor_solicitation", with(echo6, 40, 135), DropReason::kUnsupportedIcmpType});
  out.push_back({"icmp6_type_0", with(echo6, 40, 0), DropReason::kUnsupportedIcmpType});
  return out;
}

TEST(PacketViewTest, EachBadPacketHasItsReason) {
  for (const Bad& b : BadPackets()) {
    PacketView v;
    EXPECT_EQ(DropReasonName(Parse(b.packet, &v)), DropReasonName(b.reason))
        << b.name << ": " << testing::Hex(b.packet);
  }
}

// Every reason parsing can give is produced by some packet above.
TEST(PacketViewTest, EveryParseReasonIsCovered) {
  std::set<DropReason> seen;
  for (const Bad& b : BadPackets()) seen.insert(ParseReason(b.packet));
  for (size_t i = 1; i < kNumDropReasons; ++i) {
    const DropReason r = static_cast<DropReason>(i);
    if (IsMalformed(r) || r == DropReason::kUnsupportedProtocol || r == DropReason::kUnsupportedIcmpType) {
      EXPECT_TRUE(seen.count(r)) << "no packet produces " << DropReasonName(r);
    }
  }
}

// ParsePacket takes a short cut for the common packet (ParseCommonPacket):
// it must decide every packet as the general walk does, however damaged.
// Each seed cut at every length and with its header bytes changed, each in
// a heap buffer of exactly its size (ASan: nothing read beyond it).
TEST(PacketViewTest, CommonPathDecidesAsTheGeneralWalk) {
  std::vector<Bytes> seeds;
  for (const Bad& b : BadPackets()) seeds.push_back(b.packet);
  for (uint8_t proto : {kProtoTcp, kProtoUdp}) {
    seeds.push_back(Build(Spec(4, proto, 1, 2, 20)));
    seeds.push_back(Build(Spec(6, proto, 1, 2, 20)));
    PacketSpec ext = Spec(6, proto, 1, 2, 4);
    ext.ext_headers = {0};
    seeds.push_back(Build(ext));
    PacketSpec opt = Spec(4, proto, 1, 2, 4);
    opt.ip_options = {1, 1, 1, 0};
    seeds.push_back(Build(opt));
    PacketSpec frag = Spec(4, proto, 1, 2, 4);
    frag.df = false;
    seeds.push_back(Build(frag));
  }
  std::mt19937 rng(5);
  size_t common = 0, checked = 0;
  auto check = [&](const Bytes& p) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[p.size() + 1]);  // never empty
    if (!p.empty()) std::memcpy(buf.get(), p.data(), p.size());
    PacketView fast, any;
    const DropReason a = ParsePacket(buf.get(), p.size(), &fast);
    const DropReason b = ParsePacketAny(buf.get(), p.size(), &any);
    ASSERT_EQ(DropReasonName(a), DropReasonName(b)) << testing::Hex(p);
    if (a == DropReason::kNone) {
      ASSERT_TRUE(fast == any) << testing::Hex(p);
    }
    PacketView v;
    common += ParseCommonPacket(buf.get(), p.size(), &v);
    ++checked;
  };
  for (const Bytes& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n) check(Bytes(seed.begin(), seed.begin() + n));
    for (size_t off = 0; off < std::min<size_t>(seed.size(), 68); ++off) {
      for (int k = 0; k < 12; ++k) {
        Bytes p = seed;
        p[off] = k < 6 ? std::array<uint8_t, 6>{0x00, 0x45, 0x60, 0x3f, 0xff, kProtoTcp}[k] : uint8_t(rng());
        check(p);
        if (p.size() > 20) check(Bytes(p.begin(), p.end() - 1 - rng() % 20));
      }
    }
  }
  EXPECT_GT(common, 1000u) << "the common path is taken (" << checked << " packets)";
}

}  // namespace
}  // namespace natd

// Packet-level tests of the translation engine: golden fixtures (exact output
// bytes, verdicts, drop counters) and randomized out-and-back translations
// compared with packets built from scratch.
#include <array>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "nat/behavior.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/packet_view.h"
#include "nat/testing/fixtures.h"
#include "nat/testing/packet_builder.h"

namespace natd {

// Readable verdicts in assertion messages.
void PrintTo(const Verdict& v, std::ostream* os) {
  static constexpr const char* kActions[] = {"forward", "drop", "status", "reply", "hand-off", "hold"};
  *os << kActions[static_cast<int>(v.action)] << "/" << DropReasonName(v.reason);
}

namespace {

using testing::Bytes;
using testing::Fixture;

constexpr int64_t kNow = 1'000'000;

// An engine with the fixtures' configuration (or a variation of it).
class Harness {
 public:
  explicit Harness(const EngineConfig& config = testing::FixtureConfig()) {
    auto e = Engine::Create(config, &sink_);
    if (!e.ok()) throw std::runtime_error(std::string(e.status().message()));
    engine_ = *std::move(e);
  }

  Shard& shard() { return engine_->shard(0); }

  // Processes a copy of `pkt` held in a heap buffer of exactly its size (so
  // ASan catches any read past it) and returns the bytes as left behind.
  Verdict Run(const Bytes& pkt, Bytes* out) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[pkt.size()]);
    if (!pkt.empty()) std::memcpy(buf.get(), pkt.data(), pkt.size());
    Verdict v = shard().ProcessOne(buf.get(), static_cast<uint32_t>(pkt.size()), kNow);
    out->assign(buf.get(), buf.get() + pkt.size());
    return v;
  }

 private:
  NullEventSink sink_;
  std::unique_ptr<Engine> engine_;
};

struct CounterSnapshot {
  std::array<uint64_t, kNumDropReasons> drops{};
  uint64_t packets_out = 0, packets_in = 0;

  static CounterSnapshot Of(const Counters& c) {
    CounterSnapshot s;
    for (size_t r = 0; r < kNumDropReasons; ++r) s.drops[r] = c.drops[r].value();
    s.packets_out = c.packets_out.value();
    s.packets_in = c.packets_in.value();
    return s;
  }
};

bool OracleValid(const Bytes& p) { return testing::OracleChecksumsValid(p); }

class FixtureTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureTest, TranslatesExactly) {
  const Fixture& f = GetParam();
  Harness h;
  for (size_t i = 0; i < f.setup.size(); ++i) {
    Bytes out;
    Verdict v = h.Run(f.setup[i], &out);
    ASSERT_EQ(v.action, Action::kForward) << "setup packet " << i << ": " << ::testing::PrintToString(v);
  }
  if (f.verdict.action == Action::kForward) {
    // The fixture itself must be sound: both ends carry valid checksums.
    ASSERT_TRUE(OracleValid(f.input)) << testing::Hex(f.input);
    ASSERT_TRUE(OracleValid(f.expected)) << testing::Hex(f.expected);
  }
  const CounterSnapshot before = CounterSnapshot::Of(h.shard().counters());

  Bytes out;
  const Verdict v = h.Run(f.input, &out);

  EXPECT_EQ(v, f.verdict);
  EXPECT_EQ(testing::Hex(out), testing::Hex(f.expected));
  const CounterSnapshot after = CounterSnapshot::Of(h.shard().counters());
  for (size_t r = 0; r < kNumDropReasons; ++r) {
    uint64_t want = 0;
    for (const auto& [reason, n] : f.drop_deltas) {
      if (static_cast<size_t>(reason) == r) want += n;
    }
    EXPECT_EQ(after.drops[r] - before.drops[r], want) << "drop counter " << DropReasonName(static_cast<DropReason>(r));
  }
  if (v.action == Action::kForward) {
    EXPECT_TRUE(OracleValid(out)) << testing::Hex(out);
    EXPECT_EQ((after.packets_out - before.packets_out) + (after.packets_in - before.packets_in), 1u);
  }
}

// Bytes after the IP packet's own length (link-layer padding) are neither
// read as packet nor touched.
TEST_P(FixtureTest, IgnoresTrailingBytes) {
  const Fixture& f = GetParam();
  Harness h;
  for (const Bytes& s : f.setup) {
    Bytes out;
    ASSERT_EQ(h.Run(s, &out).action, Action::kForward);
  }
  const Bytes trailer = {0xde, 0xad, 0xbe};
  Bytes in = f.input;
  in.insert(in.end(), trailer.begin(), trailer.end());
  Bytes out;
  EXPECT_EQ(h.Run(in, &out), f.verdict);
  Bytes want = f.expected;
  want.insert(want.end(), trailer.begin(), trailer.end());
  EXPECT_EQ(testing::Hex(out), testing::Hex(want));
}

INSTANTIATE_TEST_SUITE_P(Golden, FixtureTest, ::testing::ValuesIn(testing::AllFixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) { return info.param.name; });

TEST(FixturesTest, NamesAreUniqueAndEveryOutcomeIsCovered) {
  std::set<std::string> names;
  std::set<DropReason> reasons;
  int forwards = 0, statuses = 0;
  for (const Fixture& f : testing::AllFixtures()) {
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate fixture " << f.name;
    if (f.verdict.action == Action::kForward) ++forwards;
    if (f.verdict.action == Action::kStatus) ++statuses;
    if (f.verdict.action == Action::kDrop) reasons.insert(f.verdict.reason);
  }
  EXPECT_GE(forwards, 35);
  EXPECT_EQ(statuses, 1);
  for (DropReason r : {DropReason::kTinyFragment, DropReason::kHairpinFragment, DropReason::kFragmentedIcmpError,
                       DropReason::kUnsupportedProtocol, DropReason::kUnsupportedIcmpType,
                       DropReason::kNoMapping, DropReason::kIcmpErrorNoSession,
                       DropReason::kTcpNoSession, DropReason::kSourceIsGlobal}) {
    EXPECT_TRUE(reasons.count(r)) << "no fixture drops with " << DropReasonName(r);
  }
}

// An ICMP error may quote any prefix of the TCP header from 8 bytes on. The
// quoted TCP checksum is updated only when both its bytes are quoted; a quote
// that ends between them keeps the first byte as natd sent it, since without
// the second the checksum cannot be updated incrementally.
TEST(IcmpErrorTest, QuotesOfEveryTcpPrefix) {
  for (int family : {4, 6}) {
    const bool v4 = family == 4;
    testing::PacketSpec syn;
    syn.family = family;
    syn.src = v4 ? testing::kInside4 : testing::kInside6;
    syn.dst = v4 ? testing::kRemote4 : testing::kRemote6;
    syn.proto = 6;
    syn.sport = 40000;
    syn.dport = 443;
    syn.payload = {1, 2, 3};
    testing::PacketSpec left_spec = syn;
    left_spec.src = v4 ? testing::kGlobal4 : testing::kGlobal6;
    const Bytes sent = testing::Build(syn), left = testing::Build(left_spec);
    const size_t l3 = v4 ? 20 : 40;
    const char* router = v4 ? testing::kRouter4 : testing::kRouter6;
    const uint8_t type = v4 ? 11 : 3;
    for (size_t tcp_len = 8; tcp_len <= 23; ++tcp_len) {
      SCOPED_TRACE(::testing::Message() << "IPv" << family << ", " << tcp_len << " bytes of TCP quoted");
      Harness h;
      Bytes got;
      ASSERT_EQ(h.Run(sent, &got).action, Action::kForward);
      const Bytes error = testing::BuildIcmpError(family, router, left_spec.src, type, 0, left, l3 + tcp_len);
      ASSERT_EQ(h.Run(error, &got).action, Action::kForward);
      EXPECT_TRUE(OracleValid(got)) << testing::Hex(got);
      Bytes want = testing::BuildIcmpError(family, router, syn.src, type, 0, sent, l3 + tcp_len);
      if (tcp_len == 17) {
        const size_t at = l3 + 8 + l3 + 16;  // outer IP, ICMP header, quoted IP, TCP checksum
        EXPECT_EQ(got[at], left[l3 + 16]);
        ASSERT_EQ(got.size(), want.size());
        // Compare the rest; the ICMP checksum differs with that byte (it
        // was verified above).
        got[at] = want[at];
        const size_t icmp_csum = l3 + 2;
        got[icmp_csum] = want[icmp_csum];
        got[icmp_csum + 1] = want[icmp_csum + 1];
      }
      EXPECT_EQ(testing::Hex(got), testing::Hex(want));
    }
  }
}

// ---------------------------------------------------------------------------
// Randomized: many addresses, ports, payload lengths; out, back in, and an
// ICMP error about the outbound packet. Every result is compared, byte for
// byte, with the packet built from scratch with the translated fields.

std::string RandomIp4(std::mt19937_64& rng, uint8_t first) {
  return std::to_string(first) + "." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256) + "." +
         std::to_string(1 + rng() % 254);
}

std::string RandomIp6(std::mt19937_64& rng, const char* prefix) {
  std::string s = prefix;
  for (int i = 0; i < 5; ++i) s += ":" + std::to_string(rng() % 10000);  // decimal digits are valid hex
  return s;
}

Bytes RandomBytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

// The L4 source port (or echo id) of a packet the engine emitted.
uint16_t SourcePortOf(const Bytes& pkt) {
  PacketView v;
  EXPECT_EQ(ParsePacket(pkt.data(), pkt.size(), &v), DropReason::kNone);
  return v.src_port;
}

// Bytes of the quote that precede the L4 header: IP header (+ extensions).
size_t QuotedL3Len(const testing::PacketSpec& s) {
  return s.family == 4 ? 20 + s.ip_options.size() : 40 + 8 * s.ext_headers.size();
}

class RandomizedTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomizedTest, OutInAndErrorMatchFromScratchChecksums) {
  EngineConfig config = testing::FixtureConfig();
  config.tcp = config.udp = config.icmp = *PresetByName(GetParam());
  Harness h(config);
  std::mt19937_64 rng(0xc0ffee);
  int changed_ports = 0;
  constexpr int kIterations = 3000;
  for (int it = 0; it < kIterations; ++it) {
    h.shard().Flush();  // independent iterations, and tables never fill
    const int family = rng() % 2 ? 4 : 6;
    const int kind = rng() % 3;  // TCP, UDP, echo
    const std::string inside = family == 4 ? RandomIp4(rng, 10) : RandomIp6(rng, "fd00:18:0");
    const std::string remote = family == 4 ? RandomIp4(rng, 203) : RandomIp6(rng, "2001:db8:1");
    const std::string router = family == 4 ? RandomIp4(rng, 198) : RandomIp6(rng, "2001:db8:2");
    const std::string global = family == 4 ? testing::kGlobal4 : testing::kGlobal6;
    // Half the inside ports are below 1024, outside the port set, so even
    // port preservation must pick another.
    const uint16_t inside_port = uint16_t(rng() % 2 ? rng() % 1024 : rng());
    const uint16_t remote_port = uint16_t(rng());

    testing::PacketSpec out;
    out.family = family;
    out.src = inside;
    out.dst = remote;
    out.proto = kind == 0 ? 6 : kind == 1 ? 17 : (family == 4 ? 1 : 58);
    out.sport = inside_port;
    out.dport = kind == 2 ? inside_port : remote_port;
    out.tcp_flags = kTcpSyn;
    out.icmp_type = family == 4 ? 8 : 128;
    out.icmp_seq = uint16_t(rng());
    out.payload = RandomBytes(rng, rng() % 200);  // odd lengths too
    out.udp_zero_checksum = family == 4 && rng() % 8 == 0;
    if (family == 4) {
      out.ip_options.assign(4 * (rng() % 3), 0x01);  // NOPs
    } else {
      static constexpr uint8_t kExt[] = {0, 43, 60};
      if (rng() % 3 == 0) out.ext_headers.push_back(kExt[rng() % 3]);
    }
    SCOPED_TRACE(::testing::Message() << "iteration " << it << " " << inside << " port " << inside_port << " -> "
                                      << remote << " proto " << int(out.proto) << " payload " << out.payload.size());
    const Bytes sent = testing::Build(out);

    // Out: the source becomes global:x'.
    Bytes got;
    ASSERT_EQ(h.Run(sent, &got).action, Action::kForward);
    const uint16_t external = SourcePortOf(got);
    if (external != inside_port) ++changed_ports;
    testing::PacketSpec left = out;
    left.src = global;
    left.sport = external;
    if (kind == 2) left.dport = external;  // the echo identifier is both "ports"
    const Bytes left_bytes = testing::Build(left);
    ASSERT_EQ(testing::Hex(got), testing::Hex(left_bytes));
    ASSERT_TRUE(OracleValid(got));

    // Back in: the reply's destination becomes inside:x.
    testing::PacketSpec reply = out;
    reply.src = remote;
    reply.dst = global;
    reply.sport = kind == 2 ? external : remote_port;
    reply.dport = external;
    reply.tcp_flags = kTcpSyn | kTcpAck;
    reply.icmp_type = family == 4 ? 0 : 129;
    reply.payload = RandomBytes(rng, rng() % 200);
    testing::PacketSpec reply_in = reply;
    reply_in.dst = inside;
    reply_in.dport = inside_port;
    if (kind == 2) reply_in.sport = inside_port;
    ASSERT_EQ(h.Run(testing::Build(reply), &got).action, Action::kForward);
    ASSERT_EQ(testing::Hex(got), testing::Hex(testing::Build(reply_in)));
    ASSERT_TRUE(OracleValid(got));

    // An ICMP error about the outbound packet, quoting a random amount of it
    // (at least the L4 header's first 8 bytes). A quote that ends inside the
    // TCP checksum field cannot have that field updated (its second byte is
    // missing), so such lengths are not tried.
    const size_t min_quote = QuotedL3Len(out) + 8;
    size_t quote_len = min_quote + rng() % (sent.size() - min_quote + 1);
    if (kind == 0 && quote_len == QuotedL3Len(out) + 17) ++quote_len;
    static constexpr uint8_t kTypes4[] = {3, 11, 12};
    static constexpr uint8_t kTypes6[] = {1, 2, 3, 4};
    const uint8_t type = family == 4 ? kTypes4[rng() % 3] : kTypes6[rng() % 4];
    const uint8_t code = uint8_t(rng() % 4);
    const uint32_t extra = uint32_t(rng());
    const Bytes error = testing::BuildIcmpError(family, router, global, type, code, left_bytes, quote_len, extra);
    ASSERT_EQ(h.Run(error, &got).action, Action::kForward) << testing::Hex(error);
    ASSERT_EQ(testing::Hex(got),
              testing::Hex(testing::BuildIcmpError(family, router, inside, type, code, sent, quote_len, extra)));
    ASSERT_TRUE(OracleValid(got));
  }
  // The test must have exercised port (identifier) rewriting, not only
  // address rewriting.
  EXPECT_GT(changed_ports, kIterations / 4);
}

INSTANTIATE_TEST_SUITE_P(Presets, RandomizedTest, ::testing::Values("full-cone", "symmetric"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace natd

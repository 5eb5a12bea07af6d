// Fragments through the engine (RFC 4787 REQ-14): in order and out of order,
// across shards, with every bound of the fragment table reached and counted;
// and the fragment table's key hash.
// What the dataplane does is played here by Net: steer, process, follow
// hand-offs, keep held packets, and take what the shards let go of.
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nat/config.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/fragment_table.h"
#include "nat/packet_view.h"
#include "nat/testing/packet_builder.h"

namespace natd {
namespace {

using testing::Build;
using testing::Bytes;
using testing::Hex;
using testing::PacketSpec;

const char kGlobal4[] = "198.19.0.100";
const char kGlobal6[] = "2001:db8:19::100";

struct Family {
  int family;
  const char* inside;
  const char* remote;
  const char* global;
};
const Family kFamilies[] = {{4, "198.18.0.2", "203.0.113.7", kGlobal4}, {6, "fd00:18::2", "2001:db8:beef::7", kGlobal6}};

EngineConfig Config(uint32_t shards) {
  EngineConfig c;
  ParseIp4(kGlobal4, &c.global4.emplace());
  ParseIp6(kGlobal6, &c.global6.emplace());
  c.shards = shards;
  c.max_sessions = 1024;
  c.seed = 7;
  c.inside = *PrefixSet::Parse("198.18.0.0/24,fd00:18::/64");
  c.tcp = c.udp = c.icmp = *PresetByName("port-restricted-cone");
  c.fragment_timeout_ms = 1000;
  return c;
}

// The fragments of one UDP datagram of `payload` bytes (its UDP header in the
// first), `chunk` bytes of IP payload each: built whole, then cut, so the UDP
// checksum covers the whole datagram as a real sender's does.
std::vector<Bytes> Fragments(int family, const std::string& src, const std::string& dst, uint16_t sport,
                             uint16_t dport, size_t payload, size_t chunk, uint32_t id) {
  PacketSpec s = testing::MakeSpec(family, src, dst, kProtoUdp, sport, dport);
  s.payload.resize(payload);
  for (size_t i = 0; i < payload; ++i) s.payload[i] = uint8_t(i * 13 + id);
  const Bytes whole = Build(s);
  const size_t hdr = family == 4 ? 20 : 40;
  const Bytes body(whole.begin() + hdr, whole.end());
  std::vector<Bytes> out;
  for (size_t off = 0; off < body.size(); off += chunk) {
    const size_t n = std::min(chunk, body.size() - off);
    const bool more = off + n < body.size();
    Bytes p(whole.begin(), whole.begin() + hdr);
    if (family == 4) {
      p[2] = uint8_t((hdr + n) >> 8);
      p[3] = uint8_t(hdr + n);
      p[4] = uint8_t(id >> 8);
      p[5] = uint8_t(id);
      const uint16_t frag = uint16_t(off / 8 | (more ? 0x2000 : 0));
      p[6] = uint8_t(frag >> 8);
      p[7] = uint8_t(frag);
      p[10] = p[11] = 0;
      const uint16_t c = testing::OracleSum(p.data(), 20);
      p[10] = uint8_t(c >> 8);
      p[11] = uint8_t(c);
    } else {
      p[6] = 44;  // Fragment header
      const uint16_t len = uint16_t(8 + n);
      p[4] = uint8_t(len >> 8);
      p[5] = uint8_t(len);
      const uint16_t fo = uint16_t(off / 8 << 3 | (more ? 1 : 0));
      const uint8_t fh[8] = {kProtoUdp, 0, uint8_t(fo >> 8), uint8_t(fo), uint8_t(id >> 24), uint8_t(id >> 16),
                             uint8_t(id >> 8), uint8_t(id)};
      p.insert(p.end(), fh, fh + 8);
    }
    p.insert(p.end(), body.begin() + off, body.begin() + off + n);
    out.push_back(p);
  }
  return out;
}

// Puts fragments back together (by offset) into the whole datagram, as the
// receiving host would; for checking what natd emitted.
Bytes Reassemble(const std::vector<Bytes>& frags) {
  const int family = frags.at(0)[0] >> 4;
  const size_t hdr = family == 4 ? 20 : 48;
  Bytes body;
  Bytes head;
  for (const Bytes& p : frags) {
    const size_t real_off = family == 4 ? size_t((p[6] & 0x1f) << 8 | p[7]) * 8 : size_t(p[42] << 8 | p[43]) & ~size_t(7);
    if (real_off == 0) head.assign(p.begin(), p.begin() + (family == 4 ? 20 : 40));
    if (body.size() < real_off + p.size() - hdr) body.resize(real_off + p.size() - hdr);
    std::copy(p.begin() + hdr, p.end(), body.begin() + real_off);
  }
  // Every fragment carries the addresses its first does (and a valid IPv4
  // header checksum), or the receiver would not put them together.
  const size_t a = family == 4 ? 12 : 8, alen = family == 4 ? 8 : 32;
  for (const Bytes& p : frags) {
    EXPECT_EQ(Hex(Bytes(p.begin() + a, p.begin() + a + alen)), Hex(Bytes(head.begin() + a, head.begin() + a + alen)));
    EXPECT_TRUE(testing::OracleChecksumsValid(p) || (p[0] >> 4) == 6) << Hex(p);
    if (family == 4) {
      EXPECT_EQ(p[4] << 8 | p[5], head[4] << 8 | head[5]) << "one Identification per datagram";
    }
  }
  Bytes whole = head;
  if (family == 4) {
    whole[2] = uint8_t((20 + body.size()) >> 8);
    whole[3] = uint8_t(20 + body.size());
    whole[6] = whole[7] = 0;
    whole[10] = whole[11] = 0;
    const uint16_t c = testing::OracleSum(whole.data(), 20);
    whole[10] = uint8_t(c >> 8);
    whole[11] = uint8_t(c);
  } else {
    whole[6] = kProtoUdp;
    whole[4] = uint8_t(body.size() >> 8);
    whole[5] = uint8_t(body.size());
  }
  whole.insert(whole.end(), body.begin(), body.end());
  return whole;
}

// The dataplane, played by the test.
class Net {
 public:
  explicit Net(const EngineConfig& c) {
    auto e = Engine::Create(c, &sink_);
    if (!e.ok()) throw std::runtime_error(std::string(e.status().message()));
    engine_ = *std::move(e);
  }
  Engine& engine() { return *engine_; }

  // Sends one packet in; whatever comes out (now or released) lands in out_.
  Action Send(const Bytes& pkt, int64_t now) {
    buffers_.push_back(std::make_unique<Bytes>(pkt));
    Bytes& b = *buffers_.back();
    PacketRef ref{b.data(), uint32_t(b.size()), 0, false, false, buffers_.size() - 1};
    const uint32_t s = engine_->ShardOf(b.data(), b.size());
    const Action a = Follow(s, ref, engine_->shard(s).ProcessOne(ref, now), now);
    Drain(now);
    return a;
  }
  void Tick(int64_t now) {
    for (uint32_t i = 0; i < engine_->shards(); ++i) engine_->shard(i).Expire(now);
    Drain(now);
  }
  std::vector<Bytes> TakeOut() { return std::move(out_); }
  uint64_t Counter(DropReason r) const {
    uint64_t n = 0;
    for (uint32_t i = 0; i < engine_->shards(); ++i) n += engine_->shard(i).counters().drops[size_t(r)].value();
    return n;
  }
  uint64_t held() const {
    uint64_t n = 0;
    for (uint32_t i = 0; i < engine_->shards(); ++i) n += engine_->shard(i).fragments().held();
    return n;
  }
  int handoffs = 0;

 private:
  Action Follow(uint32_t s, PacketRef& ref, Verdict v, int64_t now) {
    if (v.action == Action::kHandOff) {
      ++handoffs;
      EXPECT_NE(v.next_shard, s);
      EXPECT_TRUE(ref.handed_off);
      v = engine_->shard(v.next_shard).ProcessOne(ref, now);
      EXPECT_NE(v.action, Action::kHandOff);
      EXPECT_NE(v.action, Action::kHold);
    }
    if (v.action == Action::kForward) out_.push_back(Bytes(ref.data, ref.data + ref.len));
    return v.action;
  }
  void Drain(int64_t now) {
    Shard::Released r[8];
    for (uint32_t i = 0; i < engine_->shards(); ++i) {
      size_t n;
      while ((n = engine_->shard(i).TakeReleased(std::span(r, 8))) > 0) {
        for (size_t k = 0; k < n; ++k) Follow(i, r[k].packet, r[k].verdict, now);
      }
    }
  }
  NullEventSink sink_;
  std::unique_ptr<Engine> engine_;
  std::deque<std::unique_ptr<Bytes>> buffers_;  // held packets live in them
  std::vector<Bytes> out_;
};

// A datagram leaves in fragments, in every order, across 1 and 3 shards; the
// reply comes back in fragments. What the far end reassembles is the datagram
// translated whole (its UDP checksum valid); what the inside host reassembles
// is the reply as sent, addressed to it.
TEST(Fragments, OutAndBackInAnyOrder) {
  for (uint32_t shards : {1u, 3u}) {
    for (const Family& f : kFamilies) {
      for (int order = 0; order < 3; ++order) {  // in order, reversed, first last
        SCOPED_TRACE("shards " + std::to_string(shards) + " v" + std::to_string(f.family) + " order " +
                     std::to_string(order));
        Net net(Config(shards));
        const uint16_t port = uint16_t(20000 + order * 1000 + f.family);
        std::vector<Bytes> frags = Fragments(f.family, f.inside, f.remote, port, 53, 3000, 1000, 0x4242 + order);
        ASSERT_EQ(frags.size(), 4u);
        std::vector<size_t> seq = {0, 1, 2, 3};
        if (order == 1) seq = {3, 2, 1, 0};
        if (order == 2) seq = {1, 3, 2, 0};
        int64_t now = 1000;
        for (size_t i : seq) {
          const Action a = net.Send(frags[i], now += 10);
          if (i == 0 || (order == 0)) {
            EXPECT_EQ(a, Action::kForward);
          } else {
            EXPECT_EQ(a, Action::kHold) << "fragment " << i << " before its first";
          }
        }
        std::vector<Bytes> out = net.TakeOut();
        ASSERT_EQ(out.size(), 4u);
        EXPECT_EQ(net.held(), 0u);
        const Bytes sent = Reassemble(out);
        // The external port is preserved (port-restricted-cone, a free port).
        PacketSpec want = testing::MakeSpec(f.family, f.global, f.remote, kProtoUdp, port, 53);
        want.df = false;  // a fragmented datagram
        want.payload.resize(3000);
        for (size_t i = 0; i < 3000; ++i) want.payload[i] = uint8_t(i * 13 + 0x4242 + order);
        Bytes want_bytes = Build(want);
        if (f.family == 4) {  // the identification stays the sender's
          want_bytes[4] = sent[4];
          want_bytes[5] = sent[5];
          want_bytes[10] = want_bytes[11] = 0;
          const uint16_t c = testing::OracleSum(want_bytes.data(), 20);
          want_bytes[10] = uint8_t(c >> 8);
          want_bytes[11] = uint8_t(c);
        }
        EXPECT_EQ(Hex(sent), Hex(want_bytes));
        EXPECT_TRUE(testing::OracleChecksumsValid(sent));

        // The reply, fragmented, last fragment first.
        std::vector<Bytes> back = Fragments(f.family, f.remote, f.global, 53, port, 2000, 600, 0x77 + order);
        for (size_t i = back.size(); i-- > 0;) net.Send(back[i], now += 10);
        out = net.TakeOut();
        ASSERT_EQ(out.size(), back.size());
        const Bytes got = Reassemble(out);
        PacketSpec rep = testing::MakeSpec(f.family, f.remote, f.inside, kProtoUdp, 53, port);
        rep.df = false;
        rep.payload.resize(2000);
        for (size_t i = 0; i < 2000; ++i) rep.payload[i] = uint8_t(i * 13 + 0x77 + order);
        Bytes rep_bytes = Build(rep);
        if (f.family == 4) {
          rep_bytes[4] = got[4];
          rep_bytes[5] = got[5];
          rep_bytes[10] = rep_bytes[11] = 0;
          const uint16_t c = testing::OracleSum(rep_bytes.data(), 20);
          rep_bytes[10] = uint8_t(c >> 8);
          rep_bytes[11] = uint8_t(c);
        }
        EXPECT_EQ(Hex(got), Hex(rep_bytes));
      }
    }
  }
}

// With several shards a datagram's fragments meet in one shard and are
// handed to the session's; over many datagrams both cases happen.
TEST(Fragments, CrossShardHandOffsHappen) {
  Net net(Config(4));
  int64_t now = 1000;
  for (uint16_t i = 0; i < 40; ++i) {
    for (const Bytes& p : Fragments(4, "198.18.0.2", "203.0.113.7", uint16_t(30000 + i * 7), 53, 1500, 800, i)) {
      EXPECT_EQ(net.Send(p, now += 1), Action::kForward);
    }
  }
  EXPECT_EQ(net.TakeOut().size(), 80u);
  EXPECT_GT(net.handoffs, 0);
}

// A later fragment whose first was refused (filtered here) is dropped too,
// and so are those held for it.
TEST(Fragments, LaterFragmentsOfARefusedFirstAreDropped) {
  Net net(Config(1));
  std::vector<Bytes> in = Fragments(4, "203.0.113.7", kGlobal4, 53, 40000, 1500, 800, 9);
  EXPECT_EQ(net.Send(in[1], 1000), Action::kHold);
  EXPECT_EQ(net.Send(in[0], 1001), Action::kDrop);  // no mapping for port 40000
  EXPECT_EQ(net.Counter(DropReason::kNoMapping), 1u);
  EXPECT_EQ(net.Counter(DropReason::kFragmentNoFirst), 1u) << "the held one";
  EXPECT_TRUE(net.TakeOut().empty());
  EXPECT_EQ(net.held(), 0u);
}

TEST(Fragments, HeldFragmentsTimeOut) {
  Net net(Config(2));
  std::vector<Bytes> frags = Fragments(6, "fd00:18::2", "2001:db8:beef::7", 20001, 53, 3000, 1000, 5);
  EXPECT_EQ(net.Send(frags[2], 1000), Action::kHold);
  EXPECT_EQ(net.Send(frags[3], 1100), Action::kHold);
  net.Tick(1500);
  EXPECT_EQ(net.held(), 2u);
  net.Tick(2101);  // 1 s after the last fragment
  EXPECT_EQ(net.held(), 0u);
  EXPECT_EQ(net.Counter(DropReason::kFragmentTimeout), 2u);
  // The first fragment now starts afresh; what was dropped stays dropped.
  EXPECT_EQ(net.Send(frags[0], 2200), Action::kForward);
  EXPECT_EQ(net.TakeOut().size(), 1u);
}

TEST(Fragments, BoundsAreCounted) {
  {
    EngineConfig c = Config(1);
    c.fragments_held = 3;
    Net net(c);
    for (uint32_t id = 0; id < 5; ++id) {
      std::vector<Bytes> frags = Fragments(4, "198.18.0.2", "203.0.113.7", 20001, 53, 1500, 800, id);
      net.Send(frags[1], 1000);
    }
    EXPECT_EQ(net.held(), 3u);
    EXPECT_EQ(net.Counter(DropReason::kFragmentHoldCount), 2u);
  }
  {
    EngineConfig c = Config(1);
    c.fragment_held_bytes = 2000;
    Net net(c);
    for (uint32_t id = 0; id < 4; ++id) {
      std::vector<Bytes> frags = Fragments(4, "198.18.0.2", "203.0.113.7", 20001, 53, 1500, 800, id);
      net.Send(frags[1], 1000);  // 728 bytes each
    }
    EXPECT_EQ(net.held(), 2u);
    EXPECT_EQ(net.Counter(DropReason::kFragmentHoldBytes), 2u);
  }
  {
    EngineConfig c = Config(1);
    c.fragment_datagrams = 2;
    Net net(c);
    for (uint32_t id = 0; id < 3; ++id) {
      std::vector<Bytes> frags = Fragments(4, "198.18.0.2", "203.0.113.7", uint16_t(20001 + id), 53, 1500, 800, id);
      net.Send(frags[0], 1000);
    }
    EXPECT_EQ(net.Counter(DropReason::kFragmentTableFull), 1u);
    EXPECT_EQ(net.TakeOut().size(), 2u);
    net.Tick(2001);  // the entries expire: room again
    std::vector<Bytes> frags = Fragments(4, "198.18.0.2", "203.0.113.7", 20009, 53, 1500, 800, 9);
    EXPECT_EQ(net.Send(frags[0], 2002), Action::kForward);
  }
}

// Every fragment of a datagram steers to one shard, whatever its offset.
TEST(Fragments, SteeredByDatagram) {
  NullEventSink sink;
  auto e = Engine::Create(Config(7), &sink);
  ASSERT_TRUE(e.ok());
  for (uint32_t id = 0; id < 50; ++id) {
    for (const Family& f : kFamilies) {
      std::vector<Bytes> frags = Fragments(f.family, f.inside, f.remote, uint16_t(1000 + id), 53, 3000, 1000, id);
      const uint32_t s = (*e)->ShardOf(frags[0].data(), frags[0].size());
      for (const Bytes& p : frags) EXPECT_EQ((*e)->ShardOf(p.data(), p.size()), s);
    }
  }
}

// Datagrams between IPv6 hosts numbered in their addresses' last bytes, with
// consecutive Identifications, hash apart (the key hash feeds address halves
// through MixWords, whose second argument is mixed once: see TableHash's
// Word(Ip6) for how that once made such keys collide).
TEST(FragmentKeyHash, Ip6DatagramsNumberedInTheLastBytesHashApart) {
  std::set<size_t> hashes;
  uint32_t keys = 0;
  for (uint32_t src = 0; src < 256; ++src) {
    for (uint32_t dst = 0; dst < 16; ++dst) {
      for (uint32_t id = 0; id < 16; ++id) {
        FragmentKey k{};
        const uint8_t s[16] = {0xfd, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, uint8_t(src)};
        const uint8_t d[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x19, 0, 0, 0, 0, 0, 0, 198, 19, 0, uint8_t(dst)};
        std::memcpy(k.src, s, 16);
        std::memcpy(k.dst, d, 16);
        k.id = 0x10000 + id;
        k.proto = 17;
        k.family = 6;
        hashes.insert(FragmentKeyHash()(k));
        ++keys;
      }
    }
  }
  EXPECT_EQ(hashes.size(), keys);
}

}  // namespace
}  // namespace natd

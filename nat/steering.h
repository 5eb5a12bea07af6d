// Steering: which shard a packet belongs to, as a pure function of its bytes
// and the configuration. The engine calls it for every packet (in the reader
// threads); a shard calls it for a datagram's first fragment, to learn which
// shard holds the datagram's session.
//
//   outbound (destination not a global address): the shard of the inside
//     endpoint (source address, port or echo id) — the owner of the inside
//     port when it is in the port set, so a preserved port is in the right
//     slice; a hash of the endpoint otherwise (an inside host's ICMP error:
//     the endpoint its quote is addressed to);
//   inbound (destination is a global address): the owner of the destination
//     port, or for an ICMP error of the quoted source port;
//   hairpinned (destination a global address, source inside): as outbound;
//     the shard hands the packet on to the owner of the destination port
//     (shard.h);
//   fragments: a hash of (source, destination, protocol, identification), so
//     every fragment of a datagram meets in one shard (fragment_table.h);
//   anything that will be dropped or is not port-based: shard 0.
#ifndef NATD_NAT_STEERING_H_
#define NATD_NAT_STEERING_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "nat/config.h"
#include "nat/packet_view.h"
#include "nat/port_set.h"
#include "nat/prefix_set.h"

namespace natd {

class Steering {
 public:
  Steering(const EngineConfig& c, const PortPlan* plan) : shards_(c.shards), plan_(plan), inside_(c.inside) {
    if (c.global4) {
      globals4_.push_back(c.global4->raw);
      for (const Ip4& a : c.more_global4) globals4_.push_back(a.raw);
    }
    if (c.global6) {
      globals6_.push_back(*c.global6);
      for (const Ip6& a : c.more_global6) globals6_.push_back(a);
    }
  }

  // For a parsed packet (`v` from ParsePacket on `d`).
  uint32_t ShardOf(const uint8_t* d, const PacketView& v) const {
    if (shards_ == 1) return 0;
    if (v.fragment) return ShardOfDatagram(d, v);
    if (v.kind == L4Kind::kNone) return 0;
    return ShardOfFlow(d, v);
  }

  // The shard of the session a port-based packet (or first fragment) belongs to.
  uint32_t ShardOfFlow(const uint8_t* d, const PacketView& v) const {
    if (shards_ == 1) return 0;
    const size_t alen = v.family == 4 ? 4 : 16;
    if (IsGlobal(v.family, d + v.dst_addr_offset()) && !IsHairpin(d, v)) {
      const uint16_t port = v.kind == L4Kind::kError ? v.quote.src_port : v.dst_port;
      const uint8_t owner = plan_->OwnerOf(port);
      return owner == PortPlan::kNoShard ? 0 : owner;
    }
    // An inside host's ICMP error belongs to the inside endpoint it quotes as
    // the destination of the packet it received.
    if (v.kind == L4Kind::kError) return InsideShard(d + v.quote.l3 + v.dst_addr_offset(), alen, v.quote.dst_port);
    return InsideShard(d + v.src_addr_offset(), alen, v.src_port);
  }

  // Every fragment of one datagram: a hash of its fragment key.
  uint32_t ShardOfDatagram(const uint8_t* d, const PacketView& v) const {
    if (shards_ == 1) return 0;
    const size_t alen = v.family == 4 ? 4 : 16;
    uint64_t h = uint64_t(v.frag_id) << 8 | v.proto;
    h = MixAddress(h, d + v.src_addr_offset(), alen);
    h = MixAddress(h, d + v.dst_addr_offset(), alen);
    return static_cast<uint32_t>((h >> 32) % shards_);
  }

  // The shard of an inside endpoint (its outbound packets steer there): where
  // an explicit mapping for it must live.
  uint32_t ShardOfInside(int family, const uint8_t* addr, uint16_t port) const {
    return shards_ == 1 ? 0 : InsideShard(addr, family == 4 ? 4 : 16, port);
  }

  // Whether the address is one of the family's global addresses (a pool
  // holds a few: a linear scan).
  bool IsGlobal(int family, const uint8_t* addr) const {
    if (family == 4) {
      uint32_t a;
      std::memcpy(&a, addr, 4);
      for (uint32_t g : globals4_) {
        if (g == a) return true;
      }
      return false;
    }
    const Ip6 a = Ip6::Load(addr);
    for (const Ip6& g : globals6_) {
      if (g == a) return true;
    }
    return false;
  }
  bool IsInside(int family, const uint8_t* addr) const { return inside_.Contains(family, addr); }
  // For a packet to a global address: whether it is hairpinned, i.e. from
  // an inside host and, for an ICMP error, about a packet an inside host
  // received (its quoted destination is inside). The router's own errors
  // about translated packets come from its inside address too, but quote a
  // packet to a remote host: those are plain inbound.
  bool IsHairpin(const uint8_t* d, const PacketView& v) const {
    if (!inside_.Contains(v.family, d + v.src_addr_offset())) return false;
    return v.kind != L4Kind::kError || inside_.Contains(v.family, d + v.quote.l3 + v.dst_addr_offset());
  }
  uint32_t shards() const { return shards_; }

 private:
  uint32_t InsideShard(const uint8_t* addr, size_t addr_len, uint16_t port) const {
    const uint8_t owner = plan_->OwnerOf(port);
    if (owner != PortPlan::kNoShard) return owner;
    return static_cast<uint32_t>((MixAddress(port, addr, addr_len) >> 32) % shards_);
  }

  // Folds an address, a 32-bit word at a time, into a steering hash.
  static uint64_t MixAddress(uint64_t h, const uint8_t* addr, size_t addr_len) {
    for (size_t i = 0; i < addr_len; i += 4) {
      uint32_t w;
      std::memcpy(&w, addr + i, 4);
      h = (h ^ w) * 0x9e3779b97f4a7c15ull;
      h ^= h >> 29;
    }
    return h;
  }

  const uint32_t shards_;
  const PortPlan* const plan_;
  const PrefixSet inside_;
  std::vector<uint32_t> globals4_;  // raw, network order
  std::vector<Ip6> globals6_;
};

}  // namespace natd

#endif  // NATD_NAT_STEERING_H_

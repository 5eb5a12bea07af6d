// Test-only: builds IPv4/IPv6 packets from a description and computes every
// checksum from scratch with its own byte-wise arithmetic, independent of
// nat/checksum.h, so tests can compare the engine's incremental updates with
// a full recomputation.
#ifndef NATD_NAT_TESTING_PACKET_BUILDER_H_
#define NATD_NAT_TESTING_PACKET_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace natd::testing {

using Bytes = std::vector<uint8_t>;

struct PacketSpec {
  int family = 4;
  std::string src;  // "198.18.0.2" or "fd00:18::2"
  std::string dst;
  uint8_t proto = 17;  // 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
  uint16_t sport = 0;  // TCP/UDP source port; ICMP echo identifier
  uint16_t dport = 0;
  uint8_t tcp_flags = 0x02;
  uint8_t icmp_type = 8;  // echo request (v6: use 128)
  uint8_t icmp_code = 0;
  uint16_t icmp_seq = 1;
  Bytes payload;
  bool udp_zero_checksum = false;  // IPv4 only: send checksum 0
  Bytes ip_options;                // IPv4 options (multiple of 4 bytes)
  std::vector<uint8_t> ext_headers;  // IPv6: types (0, 43, 60) of 8-byte headers
  uint8_t ttl = 64;
  uint16_t ip_id = 0x1234;
  // IPv4 Don't Fragment, set as Linux sets it on what it sends whole; natd
  // rewrites the Identification of packets without it (RFC 7857 §10).
  bool df = true;
};

Bytes Build(const PacketSpec& spec);

// The common case: one packet between two endpoints (sport is the echo id).
PacketSpec MakeSpec(int family, const std::string& src, const std::string& dst, uint8_t proto, uint16_t sport,
                    uint16_t dport);

// An ICMP/ICMPv6 error from `src` to `dst` quoting the first `quote_len`
// bytes of `quoted` (all of it when quote_len is 0).
Bytes BuildIcmpError(int family, const std::string& src, const std::string& dst, uint8_t type, uint8_t code,
                     const Bytes& quoted, size_t quote_len = 0, uint32_t extra = 0);

// From-scratch checksum of a buffer (its checksum field included as is).
uint16_t OracleSum(const uint8_t* p, size_t n, uint32_t initial = 0);

// True when every checksum of the packet verifies from scratch: IPv4 header,
// and the L4 checksum (pseudo-header where the protocol has one). A zero
// IPv4 UDP checksum counts as valid. ICMP errors: the outer ICMP checksum,
// plus the quoted IPv4 header checksum when `check_quoted_ip` is set. Of a
// fragment only the IPv4 header checksum is checked: its datagram's L4
// checksum covers bytes other fragments hold.
bool OracleChecksumsValid(const Bytes& pkt, bool check_quoted_ip = true);

// Field helpers for expectations.
std::string Hex(const Bytes& b);
uint16_t Be16(const Bytes& b, size_t off);

}  // namespace natd::testing

#endif  // NATD_NAT_TESTING_PACKET_BUILDER_H_

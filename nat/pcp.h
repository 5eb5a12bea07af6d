// Port Control Protocol (RFC 6887) and NAT-PMP (RFC 6886): the wire format.
//
// An inside host asks natd for an explicit mapping of one of its ports, for
// a lifetime, and learns the external address and port:
//
//   client X:x ──UDP──▶ natd's inside address :5351
//     NAT-PMP  version 0: opcode 0 (external address), 1 (map UDP), 2 (map TCP)
//     PCP      version 2: ANNOUNCE (0), MAP (1); PEER (2) is refused
//   ◀── response: result, lifetime, epoch, external address and port
//
// A lifetime of 0 deletes. This file only reads requests and writes
// responses (bounds-checked, no allocation); what a request does to the
// tables is MappingTable's (explicit mappings) and the server's
// (tools/pcp_server.h).
//
// Deliberately unsupported, answered with the RFC's code: PCP PEER
// (UNSUPP_OPCODE), the THIRD_PARTY and FILTER options and any other
// mandatory option (UNSUPP_OPTION), protocols other than TCP and UDP
// (UNSUPP_PROTOCOL), PCP version 1 (UNSUPP_VERSION). PREFER_FAILURE is
// honoured.
#ifndef NATD_NAT_PCP_H_
#define NATD_NAT_PCP_H_

#include <cstddef>
#include <cstdint>

namespace natd::pcp {

inline constexpr uint16_t kServerPort = 5351;
inline constexpr size_t kMaxMessage = 1100;

enum class Result : uint8_t {
  // PCP result codes (RFC 6887 §7.4).
  kSuccess = 0,
  kUnsuppVersion = 1,
  kNotAuthorized = 2,
  kMalformedRequest = 3,
  kUnsuppOpcode = 4,
  kUnsuppOption = 5,
  kMalformedOption = 6,
  kNetworkFailure = 7,
  kNoResources = 8,
  kUnsuppProtocol = 9,
  kUserExQuota = 10,
  kCannotProvideExternal = 11,
  kAddressMismatch = 12,
  kExcessiveRemotePeers = 13,
};

enum class Kind : uint8_t { kNatPmp, kPcp };
enum class Op : uint8_t { kAnnounce, kExternalAddress, kMap, kPeer, kOther };

struct Request {
  Kind kind = Kind::kPcp;
  Op op = Op::kOther;
  uint8_t opcode = 0;          // as on the wire
  uint8_t version = 0;
  uint8_t protocol = 0;        // 6 or 17 (0: all, refused)
  uint16_t internal_port = 0;
  uint16_t suggested_port = 0;
  uint32_t lifetime = 0;       // seconds
  uint8_t client[16] = {};     // PCP: the client's address (IPv4-mapped for IPv4)
  uint8_t suggested_ip[16] = {};
  uint8_t nonce[12] = {};      // PCP MAP
  bool prefer_failure = false;
  // Not kSuccess: the request is answered with this code and nothing else.
  Result error = Result::kSuccess;
};

// Parses a datagram sent to the server. Never fails outright: what cannot
// be honoured is in Request::error. Returns false only when the datagram
// must be ignored (too short to answer, or itself a response).
bool Parse(const uint8_t* data, size_t len, Request* out);

struct Answer {
  Result result = Result::kSuccess;
  uint32_t lifetime = 0;     // granted, seconds
  uint32_t epoch = 0;        // seconds since natd's mapping state began
  uint16_t external_port = 0;
  uint8_t external_ip[16] = {};  // IPv4-mapped for IPv4 (NAT-PMP takes the last 4 bytes)
};

// Writes the response to `req` into out[0, cap); returns its length (0 when
// cap is too small). `request` and `len` are the datagram as received (PCP
// echoes the request's opcode data).
size_t Build(const Request& req, const Answer& a, const uint8_t* request, size_t len, uint8_t* out, size_t cap);

// NAT-PMP result codes for PCP ones (RFC 6886 §3.5).
uint16_t NatPmpResult(Result r);

// IPv4 in IPv6 (::ffff:a.b.c.d), as PCP carries IPv4 addresses.
void MapV4(const uint8_t v4[4], uint8_t out[16]);
bool IsMappedV4(const uint8_t a[16]);

}  // namespace natd::pcp

#endif  // NATD_NAT_PCP_H_

#include "nat/pcp.h"

#include <cstring>

#include "nat/checksum.h"

namespace natd::pcp {
namespace {

constexpr uint8_t kNatPmpVersion = 0;
constexpr uint8_t kPcpVersion = 2;
constexpr uint8_t kOptThirdParty = 1, kOptPreferFailure = 2, kOptFilter = 3;

void Put32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

bool ParseNatPmp(const uint8_t* d, size_t len, Request* r) {
  r->kind = Kind::kNatPmp;
  r->opcode = d[1];
  if (d[1] >= 128) return false;  // a response
  if (d[1] == 0) {
    r->op = Op::kExternalAddress;
    return true;
  }
  if (d[1] != 1 && d[1] != 2) {
    r->op = Op::kOther;
    r->error = Result::kUnsuppOpcode;
    return true;
  }
  r->op = Op::kMap;
  if (len < 12) {
    r->error = Result::kMalformedRequest;
    return true;
  }
  r->protocol = d[1] == 1 ? 17 : 6;
  r->internal_port = LoadBe16(d + 4);
  r->suggested_port = LoadBe16(d + 6);
  r->lifetime = LoadBe32(d + 8);
  return true;
}

}  // namespace

void MapV4(const uint8_t v4[4], uint8_t out[16]) {
  std::memset(out, 0, 10);
  out[10] = out[11] = 0xff;
  std::memcpy(out + 12, v4, 4);
}

bool IsMappedV4(const uint8_t a[16]) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, 12) == 0;
}

bool Parse(const uint8_t* d, size_t len, Request* r) {
  *r = Request{};
  if (len < 2) return false;
  r->version = d[0];
  if (d[0] == kNatPmpVersion) return ParseNatPmp(d, len, r);
  r->kind = Kind::kPcp;
  r->opcode = d[1] & 0x7f;
  if (d[1] & 0x80) return false;  // a response
  if (d[0] != kPcpVersion) {
    r->error = Result::kUnsuppVersion;
    return len >= 4;
  }
  // RFC 6887 §7.1: at least the 24-byte header, at most 1100, a multiple of 4.
  if (len < 24) return false;
  if (len > kMaxMessage || len % 4 != 0) {
    r->error = Result::kMalformedRequest;
    return true;
  }
  r->lifetime = LoadBe32(d + 4);
  std::memcpy(r->client, d + 8, 16);
  size_t off = 24;
  switch (r->opcode) {
    case 0:
      r->op = Op::kAnnounce;
      break;
    case 1:
    case 2: {
      r->op = r->opcode == 1 ? Op::kMap : Op::kPeer;
      const size_t need = r->opcode == 1 ? 36 : 56;
      if (len - off < need) {
        r->error = Result::kMalformedRequest;
        return true;
      }
      const uint8_t* m = d + off;
      std::memcpy(r->nonce, m, 12);
      r->protocol = m[12];
      r->internal_port = LoadBe16(m + 16);
      r->suggested_port = LoadBe16(m + 18);
      std::memcpy(r->suggested_ip, m + 20, 16);
      off += need;
      if (r->op == Op::kPeer) r->error = Result::kUnsuppOpcode;
      break;
    }
    default:
      r->op = Op::kOther;
      r->error = Result::kUnsuppOpcode;
      return true;
  }
  // Options: code (8), reserved (8), length (16), data padded to 4.
  while (r->error == Result::kSuccess && off < len) {
    if (len - off < 4) {
      r->error = Result::kMalformedOption;
      break;
    }
    const uint8_t code = d[off];
    const size_t olen = LoadBe16(d + off + 2);
    const size_t padded = (olen + 3) & ~size_t(3);
    if (len - off - 4 < padded) {
      r->error = Result::kMalformedOption;
      break;
    }
    if (code == kOptPreferFailure && r->op == Op::kMap) {
      if (olen != 0) r->error = Result::kMalformedOption;
      r->prefer_failure = true;
    } else if (code == kOptThirdParty || code == kOptFilter || code < 128) {
      // Mandatory options natd does not implement (RFC 6887 §7.3).
      r->error = Result::kUnsuppOption;
    }  // optional-to-process options (128-255) are ignored
    off += 4 + padded;
  }
  if (r->error == Result::kSuccess && r->op == Op::kMap && r->protocol != 6 && r->protocol != 17) {
    r->error = Result::kUnsuppProtocol;
  }
  return true;
}

uint16_t NatPmpResult(Result r) {
  switch (r) {
    case Result::kSuccess:
      return 0;
    case Result::kUnsuppVersion:
      return 1;
    case Result::kNotAuthorized:
    case Result::kCannotProvideExternal:
      return 2;  // not authorized / refused
    case Result::kNetworkFailure:
      return 3;
    case Result::kNoResources:
    case Result::kUserExQuota:
      return 4;
    case Result::kUnsuppOpcode:
      return 5;
    default:
      return 5;
  }
}

size_t Build(const Request& req, const Answer& a, const uint8_t* request, size_t len, uint8_t* out, size_t cap) {
  if (req.kind == Kind::kNatPmp) {
    const bool external = req.op == Op::kExternalAddress;
    // RFC 6886 §3.2, §3.3, §3.5: 12 bytes for the address, 16 for a
    // mapping, the 8-byte header for an opcode natd does not know.
    const size_t n = req.op == Op::kMap ? 16 : external ? 12 : 8;
    if (cap < n) return 0;
    std::memset(out, 0, n);
    out[0] = kNatPmpVersion;
    out[1] = uint8_t(128 + req.opcode);
    StoreBe16(out + 2, NatPmpResult(req.error != Result::kSuccess ? req.error : a.result));
    Put32(out + 4, a.epoch);
    if (external) {
      std::memcpy(out + 8, a.external_ip + 12, 4);
    } else if (req.op == Op::kMap) {
      StoreBe16(out + 8, req.internal_port);
      StoreBe16(out + 10, a.external_port);
      Put32(out + 12, a.lifetime);
    }
    return n;
  }
  // PCP: header, then for MAP the request's opcode data with the assigned
  // port and address; options are not echoed.
  const Result result = req.error != Result::kSuccess ? req.error : a.result;
  const bool map = req.op == Op::kMap && len >= 60;
  const size_t n = map ? 60 : 24;
  if (cap < n) return 0;
  std::memset(out, 0, n);
  // An unsupported version is answered with the version natd speaks.
  out[0] = kPcpVersion;
  out[1] = uint8_t(0x80 | req.opcode);
  out[3] = uint8_t(result);
  Put32(out + 4, a.lifetime);
  Put32(out + 8, a.epoch);
  if (map) {
    std::memcpy(out + 24, request + 24, 36);  // nonce, protocol, internal port, ...
    if (result == Result::kSuccess) {
      StoreBe16(out + 24 + 18, a.external_port);
      std::memcpy(out + 24 + 20, a.external_ip, 16);
    }
  }
  return n;
}

}  // namespace natd::pcp

#include "nat/packet_view.h"

#include "nat/checksum.h"

namespace natd {
namespace {

constexpr int kMaxExtHeaders = 8;

struct IpHeaderInfo {
  uint32_t l4 = 0;  // offset of the upper-layer header
  uint8_t proto = 0;
  bool fragment = false;       // non-first or more-fragments
  bool later_fragment = false;  // offset != 0: no L4 header here
  uint32_t frag_id = 0;
};

// Walks an IPv4 header at [begin, end). For the outer packet `end` is the
// packet's total length (checked by the caller); for a quote it is the end of
// what was quoted.
DropReason ParseIp4Header(const uint8_t* d, uint32_t begin, uint32_t end, IpHeaderInfo* out) {
  if (end - begin < 20) return DropReason::kTruncatedIpHeader;
  const uint8_t* h = d + begin;
  uint32_t ihl = (h[0] & 0x0f) * 4u;
  if (ihl < 20) return DropReason::kBadIhl;
  if (ihl > end - begin) return DropReason::kBadIhl;
  uint16_t frag = LoadBe16(h + 6);
  out->fragment = (frag & 0x3fff) != 0;
  out->later_fragment = (frag & 0x1fff) != 0;
  out->frag_id = LoadBe16(h + 4);
  out->proto = h[9];
  out->l4 = begin + ihl;
  return DropReason::kNone;
}

DropReason ParseIp6Header(const uint8_t* d, uint32_t begin, uint32_t end, IpHeaderInfo* out) {
  if (end - begin < 40) return DropReason::kTruncatedIpHeader;
  uint8_t next = d[begin + 6];
  uint32_t off = begin + 40;
  for (int i = 0;; ++i) {
    if (next != 0 && next != 43 && next != 60 && next != 44) break;
    if (i == kMaxExtHeaders) return DropReason::kTooManyExtHeaders;
    if (end - off < 8) return DropReason::kTruncatedExtHeader;
    const uint8_t* e = d + off;
    if (next == 44) {  // Fragment header: always 8 bytes.
      uint16_t offset_flags = LoadBe16(e + 2);
      bool more = offset_flags & 1;
      bool later = (offset_flags >> 3) != 0;
      if (more || later) {  // an atomic fragment (RFC 6946) is processed whole
        out->fragment = true;
        out->later_fragment = later;
        out->frag_id = LoadBe32(e + 4);
      }
      next = e[0];
      off += 8;
      continue;
    }
    uint32_t ext_len = (e[1] + 1u) * 8u;
    if (ext_len > end - off) return DropReason::kTruncatedExtHeader;
    next = e[0];
    off += ext_len;
  }
  out->proto = next;
  out->l4 = off;
  return DropReason::kNone;
}

bool IsIcmpError(uint8_t family, uint8_t type) {
  if (family == 4) return type == 3 || type == 11 || type == 12;
  return type >= 1 && type <= 4;
}

bool IsIcmpEcho(uint8_t family, uint8_t type) {
  if (family == 4) return type == 0 || type == 8;
  return type == 128 || type == 129;
}

DropReason ParseQuote(const uint8_t* d, uint32_t begin, uint32_t end, uint8_t family, QuotedView* q) {
  if (end <= begin) return DropReason::kTruncatedQuote;
  if ((d[begin] >> 4) != family) return DropReason::kBadQuote;
  IpHeaderInfo ip;
  DropReason r = family == 4 ? ParseIp4Header(d, begin, end, &ip) : ParseIp6Header(d, begin, end, &ip);
  if (r == DropReason::kTruncatedIpHeader || r == DropReason::kTruncatedExtHeader) return DropReason::kTruncatedQuote;
  if (r != DropReason::kNone) return DropReason::kBadQuote;
  if (ip.later_fragment) return DropReason::kBadQuote;  // no ports to translate
  if (end - ip.l4 < 8) return DropReason::kTruncatedQuote;
  const uint8_t* l4 = d + ip.l4;
  q->l3 = static_cast<uint16_t>(begin);
  q->l4 = static_cast<uint16_t>(ip.l4);
  q->end = end;
  q->proto = ip.proto;
  const uint8_t icmp_proto = family == 4 ? kProtoIcmp : kProtoIcmp6;
  if (ip.proto == kProtoTcp || ip.proto == kProtoUdp) {
    q->kind = ip.proto == kProtoTcp ? L4Kind::kTcp : L4Kind::kUdp;
    q->src_port = LoadBe16(l4);
    q->dst_port = LoadBe16(l4 + 2);
  } else if (ip.proto == icmp_proto && IsIcmpEcho(family, l4[0])) {
    q->kind = L4Kind::kEcho;
    q->src_port = q->dst_port = LoadBe16(l4 + 4);
  } else {
    return DropReason::kBadQuote;  // an error about an error, or untranslatable
  }
  return DropReason::kNone;
}

}  // namespace

DropReason ParsePacketAny(const uint8_t* d, size_t buf_len, PacketView* v) {
  *v = PacketView{};
  if (buf_len == 0) return DropReason::kEmpty;
  if (buf_len > 0xffff + 40) buf_len = 0xffff + 40;
  const uint32_t blen = static_cast<uint32_t>(buf_len);
  const uint8_t version = d[0] >> 4;
  IpHeaderInfo ip;
  if (version == 4) {
    if (blen < 20) return DropReason::kTruncatedIpHeader;
    uint32_t total = LoadBe16(d + 2);
    if (total > blen || total < 20) return DropReason::kBadTotalLength;
    DropReason r = ParseIp4Header(d, 0, total, &ip);
    if (r != DropReason::kNone) return r;
    v->len = total;
    v->family = 4;
  } else if (version == 6) {
    if (blen < 40) return DropReason::kTruncatedIpHeader;
    uint32_t total = 40u + LoadBe16(d + 4);
    if (total > blen) return DropReason::kBadTotalLength;
    DropReason r = ParseIp6Header(d, 0, total, &ip);
    if (r != DropReason::kNone) return r;
    v->len = total;
    v->family = 6;
  } else {
    return DropReason::kBadIpVersion;
  }
  v->proto = ip.proto;
  v->l4 = static_cast<uint16_t>(ip.l4);
  v->fragment = ip.fragment;
  v->later_fragment = ip.later_fragment;
  v->frag_id = ip.frag_id;
  // A later fragment carries no L4 header: its datagram's first one does.
  if (ip.later_fragment) return DropReason::kNone;
  const uint32_t avail = v->len - ip.l4;
  const uint8_t* l4 = d + ip.l4;
  // A first fragment too short for its L4 header (RFC 1858's tiny fragment)
  // cannot be translated; it is not malformed.
  const uint32_t need = ip.proto == kProtoTcp ? 20 : 8;
  if (ip.fragment && avail < need) return DropReason::kTinyFragment;
  switch (ip.proto) {
    case kProtoTcp: {
      if (avail < 20) return DropReason::kTruncatedL4Header;
      uint32_t doff = (l4[12] >> 4) * 4u;
      if (doff > avail && doff >= 20 && ip.fragment) return DropReason::kTinyFragment;
      if (doff < 20 || doff > avail) return DropReason::kBadTcpDataOffset;
      v->kind = L4Kind::kTcp;
      v->src_port = LoadBe16(l4);
      v->dst_port = LoadBe16(l4 + 2);
      v->tcp_flags = l4[13];
      return DropReason::kNone;
    }
    case kProtoUdp: {
      if (avail < 8) return DropReason::kTruncatedL4Header;
      uint32_t ulen = LoadBe16(l4 + 4);
      // A first fragment holds only the start of what the UDP length covers.
      if (ulen < 8 || (ulen > avail && !ip.fragment)) return DropReason::kBadUdpLength;
      v->kind = L4Kind::kUdp;
      v->src_port = LoadBe16(l4);
      v->dst_port = LoadBe16(l4 + 2);
      return DropReason::kNone;
    }
    case kProtoIcmp:
    case kProtoIcmp6: {
      if ((ip.proto == kProtoIcmp) != (v->family == 4)) return DropReason::kUnsupportedProtocol;
      if (avail < 8) return DropReason::kTruncatedL4Header;
      v->icmp_type = l4[0];
      v->icmp_code = l4[1];
      if (IsIcmpEcho(v->family, l4[0])) {
        v->kind = L4Kind::kEcho;
        v->src_port = v->dst_port = LoadBe16(l4 + 4);
        return DropReason::kNone;
      }
      if (IsIcmpError(v->family, l4[0])) {
        if (ip.fragment) return DropReason::kFragmentedIcmpError;
        DropReason r = ParseQuote(d, ip.l4 + 8, v->len, v->family, &v->quote);
        if (r != DropReason::kNone) return r;
        v->kind = L4Kind::kError;
        return DropReason::kNone;
      }
      return DropReason::kUnsupportedIcmpType;
    }
    default:
      return DropReason::kUnsupportedProtocol;
  }
}

}  // namespace natd

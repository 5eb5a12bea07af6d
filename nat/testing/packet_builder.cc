#include "nat/testing/packet_builder.h"

#include <arpa/inet.h>

#include <cstdio>
#include <stdexcept>

namespace natd::testing {
namespace {

void Put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = uint8_t(v >> 8);
  b[off + 1] = uint8_t(v);
}

Bytes AddrBytes(int family, const std::string& text) {
  Bytes out(family == 4 ? 4 : 16);
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, text.c_str(), out.data()) != 1) {
    throw std::invalid_argument("bad address " + text);
  }
  return out;
}

// Pseudo-header sum (RFC 793 / RFC 8200 §8.1), unfolded.
uint32_t PseudoSum(int family, const Bytes& src, const Bytes& dst, uint8_t proto, uint32_t len) {
  Bytes ph;
  ph.insert(ph.end(), src.begin(), src.end());
  ph.insert(ph.end(), dst.begin(), dst.end());
  if (family == 4) {
    ph.push_back(0);
    ph.push_back(proto);
    ph.push_back(uint8_t(len >> 8));
    ph.push_back(uint8_t(len));
  } else {
    ph.push_back(uint8_t(len >> 24));
    ph.push_back(uint8_t(len >> 16));
    ph.push_back(uint8_t(len >> 8));
    ph.push_back(uint8_t(len));
    ph.push_back(0);
    ph.push_back(0);
    ph.push_back(0);
    ph.push_back(proto);
  }
  uint32_t s = 0;
  for (size_t i = 0; i < ph.size(); i += 2) s += uint32_t(ph[i]) << 8 | ph[i + 1];
  return s;
}

uint16_t Finish(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s);
}

}  // namespace

uint16_t OracleSum(const uint8_t* p, size_t n, uint32_t initial) {
  uint32_t s = initial;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n % 2) s += uint32_t(p[n - 1]) << 8;
  return Finish(s);
}

Bytes Build(const PacketSpec& sp) {
  const Bytes src = AddrBytes(sp.family, sp.src);
  const Bytes dst = AddrBytes(sp.family, sp.dst);
  // L4 header + payload.
  Bytes l4;
  size_t csum_off = 0;
  const bool icmp = sp.proto == 1 || sp.proto == 58;
  if (sp.proto == 6) {
    l4.assign(20, 0);
    Put16(l4, 0, sp.sport);
    Put16(l4, 2, sp.dport);
    l4[4] = 0x11;  // seq
    l4[11] = 0x01;  // ack
    l4[12] = 5 << 4;
    l4[13] = sp.tcp_flags;
    Put16(l4, 14, 65535);
    csum_off = 16;
  } else if (sp.proto == 17) {
    l4.assign(8, 0);
    Put16(l4, 0, sp.sport);
    Put16(l4, 2, sp.dport);
    Put16(l4, 4, uint16_t(8 + sp.payload.size()));
    csum_off = 6;
  } else if (icmp) {
    l4.assign(8, 0);
    l4[0] = sp.icmp_type;
    l4[1] = sp.icmp_code;
    Put16(l4, 4, sp.sport);
    Put16(l4, 6, sp.icmp_seq);
    csum_off = 2;
  } else {
    csum_off = SIZE_MAX;
  }
  l4.insert(l4.end(), sp.payload.begin(), sp.payload.end());
  if (csum_off != SIZE_MAX) {
    uint32_t initial = 0;
    if (!(sp.proto == 1)) initial = PseudoSum(sp.family, src, dst, sp.proto, uint32_t(l4.size()));
    uint16_t c = OracleSum(l4.data(), l4.size(), initial);
    if (sp.proto == 17 && c == 0) c = 0xffff;
    if (sp.proto == 17 && sp.udp_zero_checksum) c = 0;
    Put16(l4, csum_off, c);
  }
  Bytes pkt;
  if (sp.family == 4) {
    const size_t ihl = 20 + sp.ip_options.size();
    pkt.assign(ihl, 0);
    pkt[0] = uint8_t(0x40 | (ihl / 4));
    Put16(pkt, 2, uint16_t(ihl + l4.size()));
    Put16(pkt, 4, sp.ip_id);
    if (sp.df) pkt[6] = 0x40;
    pkt[8] = sp.ttl;
    pkt[9] = sp.proto;
    std::copy(src.begin(), src.end(), pkt.begin() + 12);
    std::copy(dst.begin(), dst.end(), pkt.begin() + 16);
    std::copy(sp.ip_options.begin(), sp.ip_options.end(), pkt.begin() + 20);
    Put16(pkt, 10, OracleSum(pkt.data(), ihl));
  } else {
    pkt.assign(40, 0);
    pkt[0] = 0x60;
    uint8_t next = sp.proto;
    Bytes ext;
    for (size_t i = sp.ext_headers.size(); i-- > 0;) {
      Bytes h(8, 0);
      h[0] = next;
      h[1] = 0;
      if (sp.ext_headers[i] == 0 || sp.ext_headers[i] == 60) {
        h[2] = 1;  // PadN option over the remaining 6 bytes
        h[3] = 4;
      }
      next = sp.ext_headers[i];
      h.insert(h.end(), ext.begin(), ext.end());
      ext = h;
    }
    pkt[6] = next;
    pkt[7] = sp.ttl;
    Put16(pkt, 4, uint16_t(ext.size() + l4.size()));
    std::copy(src.begin(), src.end(), pkt.begin() + 8);
    std::copy(dst.begin(), dst.end(), pkt.begin() + 24);
    pkt.insert(pkt.end(), ext.begin(), ext.end());
  }
  pkt.insert(pkt.end(), l4.begin(), l4.end());
  return pkt;
}

PacketSpec MakeSpec(int family, const std::string& src, const std::string& dst, uint8_t proto, uint16_t sport,
                    uint16_t dport) {
  PacketSpec sp;
  sp.family = family;
  sp.src = src;
  sp.dst = dst;
  sp.proto = proto;
  sp.sport = sport;
  sp.dport = dport;
  if (proto == 58) sp.icmp_type = 128;
  return sp;
}

Bytes BuildIcmpError(int family, const std::string& src, const std::string& dst, uint8_t type, uint8_t code,
                     const Bytes& quoted, size_t quote_len, uint32_t extra) {
  PacketSpec sp;
  sp.family = family;
  sp.src = src;
  sp.dst = dst;
  sp.proto = family == 4 ? 1 : 58;
  sp.icmp_type = type;
  sp.icmp_code = code;
  sp.sport = uint16_t(extra >> 16);
  sp.icmp_seq = uint16_t(extra);
  size_t n = quote_len == 0 ? quoted.size() : std::min(quote_len, quoted.size());
  sp.payload.assign(quoted.begin(), quoted.begin() + n);
  return Build(sp);
}

bool OracleChecksumsValid(const Bytes& p, bool check_quoted_ip) {
  if (p.empty()) return false;
  const int family = p[0] >> 4;
  size_t l4 = 0;
  uint8_t proto = 0;
  Bytes src, dst;
  size_t end = p.size();
  if (family == 4) {
    size_t ihl = (p[0] & 15) * 4;
    if (OracleSum(p.data(), ihl) != 0) return false;
    if (Be16(p, 6) & 0x3fff) return true;  // a fragment: its L4 checksum covers more than is here
    proto = p[9];
    l4 = ihl;
    end = Be16(p, 2);
    src.assign(p.begin() + 12, p.begin() + 16);
    dst.assign(p.begin() + 16, p.begin() + 20);
  } else {
    uint8_t next = p[6];
    l4 = 40;
    while (next == 0 || next == 43 || next == 60 || next == 44) {
      const size_t len = next == 44 ? 8 : (p[l4 + 1] + 1) * 8;  // a Fragment header is always 8 bytes
      if (next == 44 && (Be16(p, l4 + 2) & 0xfff9) != 0) return true;  // a fragment: nothing checkable alone
      next = p[l4];
      l4 += len;
    }
    proto = next;
    end = 40 + Be16(p, 4);
    src.assign(p.begin() + 8, p.begin() + 24);
    dst.assign(p.begin() + 24, p.begin() + 40);
  }
  uint32_t len = uint32_t(end - l4);
  if (proto == 17) {
    if (family == 4 && Be16(p, l4 + 6) == 0) return true;
    len = Be16(p, l4 + 4);
  }
  uint32_t initial = proto == 1 ? 0 : PseudoSum(family, src, dst, proto, len);
  if (OracleSum(p.data() + l4, len, initial) != 0) return false;
  const bool error = (proto == 1 && (p[l4] == 3 || p[l4] == 11 || p[l4] == 12)) || (proto == 58 && p[l4] < 128);
  if (error && family == 4 && check_quoted_ip) {
    size_t q = l4 + 8;
    size_t qihl = (p[q] & 15) * 4;
    if (OracleSum(p.data() + q, qihl) != 0) return false;
  }
  return true;
}

std::string Hex(const Bytes& b) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += buf;
    if (i % 4 == 3) s += ' ';
  }
  return s;
}

uint16_t Be16(const Bytes& b, size_t off) { return uint16_t(b[off] << 8 | b[off + 1]); }

}  // namespace natd::testing

#include "nat/testing/fixtures.h"

#include <stdexcept>

#include "nat/addr.h"
#include "nat/behavior.h"
#include "nat/engine.h"
#include "nat/events.h"
#include "nat/port_set.h"

namespace natd::testing {
namespace {

using natd::Action;
using natd::DropReason;
using natd::Verdict;

// Ports. Inside ports and echo identifiers are in 1024-65535, so the
// full-cone preset preserves them (see fixtures.h).
constexpr uint16_t kTcpPort = 40000;
constexpr uint16_t kUdpPort = 40001;
constexpr uint16_t kEchoId = 0x4321;
constexpr uint16_t kHttps = 443;
constexpr uint16_t kDns = 53;

// One address family's cast: the same scenarios are built for both.
struct Family {
  int family;
  const char* suffix;  // appended to fixture names
  const char* inside;
  const char* global;
  const char* remote;
  const char* router;
  uint8_t icmp_proto;
  uint8_t echo_request;
  uint8_t echo_reply;
  // ICMP error types and codes.
  uint8_t dest_unreach;
  uint8_t port_unreach_code;
  uint8_t time_exceeded;
};

const Family kV4 = {4, "4", kInside4, kGlobal4, kRemote4, kRouter4, 1, 8, 0, 3, 3, 11};
const Family kV6 = {6, "6", kInside6, kGlobal6, kRemote6, kRouter6, 58, 128, 129, 1, 4, 3};

// Deterministic payload bytes; odd lengths exercise the padded last word.
Bytes Payload(size_t n, uint8_t seed) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = uint8_t(seed + i * 7);
  return p;
}

PacketSpec Tcp(const Family& f, const char* src, const char* dst, uint16_t sport, uint16_t dport, uint8_t flags,
               Bytes payload = {}) {
  PacketSpec s;
  s.family = f.family;
  s.src = src;
  s.dst = dst;
  s.proto = 6;
  s.sport = sport;
  s.dport = dport;
  s.tcp_flags = flags;
  s.payload = std::move(payload);
  return s;
}

PacketSpec Udp(const Family& f, const char* src, const char* dst, uint16_t sport, uint16_t dport,
               Bytes payload = Payload(13, 0x41)) {
  PacketSpec s;
  s.family = f.family;
  s.src = src;
  s.dst = dst;
  s.proto = 17;
  s.sport = sport;
  s.dport = dport;
  s.payload = std::move(payload);
  return s;
}

PacketSpec Echo(const Family& f, const char* src, const char* dst, bool request, Bytes payload = Payload(21, 0x61)) {
  PacketSpec s;
  s.family = f.family;
  s.src = src;
  s.dst = dst;
  s.proto = f.icmp_proto;
  s.icmp_type = request ? f.echo_request : f.echo_reply;
  s.sport = kEchoId;
  s.icmp_seq = 7;
  s.payload = std::move(payload);
  return s;
}

// The same packet as `s` with other addresses (a spec as natd would emit it).
PacketSpec WithAddrs(PacketSpec s, const std::string& src, const std::string& dst) {
  s.src = src;
  s.dst = dst;
  return s;
}

void Put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = uint8_t(v >> 8);
  b[off + 1] = uint8_t(v);
}

// Recomputes the IPv4 header checksum after a test patched the header.
void FixIp4HeaderChecksum(Bytes& p) {
  const size_t ihl = (p[0] & 0x0f) * 4u;
  Put16(p, 10, 0);
  Put16(p, 10, OracleSum(p.data(), ihl));
}

Fixture Forward(std::string name, std::vector<Bytes> setup, Bytes input, Bytes expected) {
  return Fixture{std::move(name),
                 std::move(setup),
                 std::move(input),
                 std::move(expected),
                 Verdict{Action::kForward, DropReason::kNone},
                 {}};
}

Fixture Drop(std::string name, std::vector<Bytes> setup, Bytes input, DropReason why) {
  Bytes expected = input;  // a dropped packet is left as it was
  return Fixture{std::move(name), std::move(setup), std::move(input), std::move(expected), Verdict{Action::kDrop, why},
                 {{why, 1}}};
}

std::string Name(const char* base, const Family& f) { return std::string(base) + f.suffix; }

// An 8-byte UDP payload that makes the checksum of `emitted` (a UDP packet
// as natd emits it) compute to zero, which UDP transmits as 0xffff (RFC 768):
// the engine's incremental update must not leave 0x0000 ("no checksum").
Bytes OnesChecksumPayload(PacketSpec emitted) {
  emitted.payload.assign(8, 0);
  const Bytes built = Build(emitted);
  const uint16_t c = Be16(built, built.size() - 8 - 2);  // the UDP checksum
  Bytes payload(8, 0);
  if (c != 0xffff) {  // else the sum is 0xffff already
    // A first payload word of c = ~sum makes the sum sum + ~sum = 0xffff.
    payload[0] = uint8_t(c >> 8);
    payload[1] = uint8_t(c);
  }
  return payload;
}

// A UDP packet `sent` that natd rewrites to src_after -> dst_after, tuned so
// that the translation's checksum is 0xffff.
Fixture UdpOnesChecksum(std::string name, std::vector<Bytes> setup, PacketSpec sent, const std::string& src_after,
                        const std::string& dst_after) {
  const PacketSpec after = WithAddrs(sent, src_after, dst_after);
  sent.payload = OnesChecksumPayload(after);
  PacketSpec emitted = after;
  emitted.payload = sent.payload;
  const Bytes want = Build(emitted);
  if (Be16(want, want.size() - 8 - 2) != 0xffff) throw std::logic_error(name + ": payload not tuned");
  return Forward(std::move(name), std::move(setup), Build(sent), want);
}

// Plain traffic: outbound packets and the replies they let in.
void AddTraffic(const Family& f, std::vector<Fixture>* out) {
  const Bytes syn_out = Build(Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn));
  out->push_back(
      Forward(Name("tcp_syn_out", f), {}, syn_out, Build(Tcp(f, f.global, f.remote, kTcpPort, kHttps, kTcpSyn))));

  const Bytes synack_in = Build(Tcp(f, f.remote, f.global, kHttps, kTcpPort, kTcpSyn | kTcpAck));
  out->push_back(Forward(Name("tcp_synack_in", f), {syn_out}, synack_in,
                         Build(Tcp(f, f.remote, f.inside, kHttps, kTcpPort, kTcpSyn | kTcpAck))));

  // Established, with an odd-length payload.
  out->push_back(Forward(Name("tcp_data_out", f), {syn_out, synack_in},
                         Build(Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpAck, Payload(37, 0x10))),
                         Build(Tcp(f, f.global, f.remote, kTcpPort, kHttps, kTcpAck, Payload(37, 0x10)))));

  const Bytes udp_out = Build(Udp(f, f.inside, f.remote, kUdpPort, kDns));
  out->push_back(Forward(Name("udp_out", f), {}, udp_out, Build(Udp(f, f.global, f.remote, kUdpPort, kDns))));
  out->push_back(Forward(Name("udp_in", f), {udp_out},
                         Build(Udp(f, f.remote, f.global, kDns, kUdpPort, Payload(100, 3))),
                         Build(Udp(f, f.remote, f.inside, kDns, kUdpPort, Payload(100, 3)))));

  // Translations whose UDP checksum computes to zero, sent as 0xffff.
  out->push_back(UdpOnesChecksum(Name("udp_checksum_ones_out", f), {}, Udp(f, f.inside, f.remote, kUdpPort, kDns),
                                 f.global, f.remote));
  out->push_back(UdpOnesChecksum(Name("udp_checksum_ones_in", f), {udp_out}, Udp(f, f.remote, f.global, kDns, kUdpPort),
                                 f.remote, f.inside));

  const Bytes echo_out = Build(Echo(f, f.inside, f.remote, true));
  out->push_back(Forward(Name("echo_request_out", f), {}, echo_out, Build(Echo(f, f.global, f.remote, true))));
  out->push_back(Forward(Name("echo_reply_in", f), {echo_out}, Build(Echo(f, f.remote, f.global, false)),
                         Build(Echo(f, f.remote, f.inside, false))));
}

void AddIp4Specials(std::vector<Fixture>* out) {
  const Family& f = kV4;
  // A zero UDP checksum means "no checksum" over IPv4 and must stay zero.
  PacketSpec zero_out = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  zero_out.udp_zero_checksum = true;
  const Bytes zero_out_bytes = Build(zero_out);
  out->push_back(Forward("udp_zero_checksum_out4", {}, zero_out_bytes, Build(WithAddrs(zero_out, f.global, f.remote))));
  PacketSpec zero_in = Udp(f, f.remote, f.global, kDns, kUdpPort);
  zero_in.udp_zero_checksum = true;
  out->push_back(Forward("udp_zero_checksum_in4", {zero_out_bytes}, Build(zero_in),
                         Build(WithAddrs(zero_in, f.remote, f.inside))));

  // IP options: the L4 header starts after them.
  PacketSpec opt_syn = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn);
  opt_syn.ip_options = {0x01, 0x01, 0x01, 0x01, 0x94, 0x04, 0x00, 0x00};  // NOPs, Router Alert
  out->push_back(Forward("tcp_syn_ip_options_out4", {}, Build(opt_syn), Build(WithAddrs(opt_syn, f.global, f.remote))));
  PacketSpec opt_udp_in = Udp(f, f.remote, f.global, kDns, kUdpPort);
  opt_udp_in.ip_options = {0x94, 0x04, 0x00, 0x00};
  out->push_back(Forward("udp_ip_options_in4", {Build(Udp(f, f.inside, f.remote, kUdpPort, kDns))}, Build(opt_udp_in),
                         Build(WithAddrs(opt_udp_in, f.remote, f.inside))));
}

void AddIp6Specials(std::vector<Fixture>* out) {
  const Family& f = kV6;
  // Extension headers before the L4 header (hop-by-hop 0, routing 43,
  // destination options 60).
  PacketSpec udp_ext = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  udp_ext.ext_headers = {0, 60};
  const Bytes udp_ext_bytes = Build(udp_ext);
  out->push_back(Forward("udp_ext_headers_out6", {}, udp_ext_bytes, Build(WithAddrs(udp_ext, f.global, f.remote))));
  PacketSpec udp_ext_in = Udp(f, f.remote, f.global, kDns, kUdpPort);
  udp_ext_in.ext_headers = {0, 43, 60};
  out->push_back(Forward("udp_ext_headers_in6", {udp_ext_bytes}, Build(udp_ext_in),
                         Build(WithAddrs(udp_ext_in, f.remote, f.inside))));
  PacketSpec syn_ext = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn);
  syn_ext.ext_headers = {60};
  out->push_back(
      Forward("tcp_syn_ext_headers_out6", {}, Build(syn_ext), Build(WithAddrs(syn_ext, f.global, f.remote))));
  PacketSpec echo_ext = Echo(f, f.inside, f.remote, true);
  echo_ext.ext_headers = {0};
  out->push_back(
      Forward("echo_request_ext_headers_out6", {}, Build(echo_ext), Build(WithAddrs(echo_ext, f.global, f.remote))));
  // An atomic fragment (offset 0, M=0; RFC 6946) is a whole packet: translated.
  PacketSpec atomic = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  atomic.ext_headers = {44};
  out->push_back(Forward("udp_atomic_fragment_out6", {}, Build(atomic), Build(WithAddrs(atomic, f.global, f.remote))));
}

// An inbound ICMP error about `sent` (what the inside host sent, as built)
// after natd translated it to `left` (what went out). The input quotes `left`;
// the expected output is the same error addressed to the inside host quoting
// `sent` as the inside host built it, with from-scratch checksums.
Fixture InboundError(std::string name, const Family& f, const char* from, uint8_t type, uint8_t code,
                     const PacketSpec& sent, std::vector<Bytes> setup, size_t quote_len = 0, uint32_t extra = 0) {
  const Bytes left = Build(WithAddrs(sent, f.global, sent.dst));
  return Forward(std::move(name), std::move(setup),
                 BuildIcmpError(f.family, from, f.global, type, code, left, quote_len, extra),
                 BuildIcmpError(f.family, from, f.inside, type, code, Build(sent), quote_len, extra));
}

void AddIcmpErrors4(std::vector<Fixture>* out) {
  const Family& f = kV4;
  const PacketSpec udp = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  const PacketSpec syn = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn);
  const PacketSpec echo = Echo(f, f.inside, f.remote, true);
  // RFC 792 quotes the IP header and 8 bytes: UDP's header (with its checksum)
  // is quoted whole, TCP's only up to the sequence number (no checksum).
  out->push_back(InboundError("dest_unreach_port_udp4", f, f.remote, 3, 3, udp, {Build(udp)}, 28));
  out->push_back(InboundError("time_exceeded_tcp8_4", f, f.router, 11, 0, syn, {Build(syn)}, 28));
  out->push_back(InboundError("time_exceeded_tcp_full4", f, f.router, 11, 0, syn, {Build(syn)}));
  PacketSpec data = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpAck, Payload(25, 0x33));
  out->push_back(InboundError("time_exceeded_tcp_payload4", f, f.router, 11, 0, data, {Build(syn), Build(data)}));
  out->push_back(InboundError("time_exceeded_echo4", f, f.router, 11, 0, echo, {Build(echo)}));
  // Fragmentation needed (next-hop MTU 1400) about a packet with IP options:
  // the quoted L4 header follows the quoted options.
  PacketSpec opt_syn = syn;
  opt_syn.ip_options = {0x94, 0x04, 0x00, 0x00};
  out->push_back(
      InboundError("dest_unreach_frag_needed_ip_options4", f, f.router, 3, 4, opt_syn, {Build(opt_syn)}, 24 + 8, 1400));
  out->push_back(InboundError("param_problem_udp4", f, f.router, 12, 0, udp, {Build(udp)}));
  // The quoted UDP checksum as the inside host sent it computes to zero
  // (sent as 0xffff): the update must give 0xffff back, not 0x0000.
  PacketSpec ones = udp;
  ones.payload = OnesChecksumPayload(udp);
  out->push_back(InboundError("dest_unreach_udp_checksum_ones4", f, f.remote, 3, 3, ones, {Build(ones)}));
  // The quoted UDP checksum is zero ("none") and must stay zero.
  PacketSpec zero = udp;
  zero.udp_zero_checksum = true;
  out->push_back(InboundError("dest_unreach_udp_zero_checksum4", f, f.remote, 3, 3, zero, {Build(zero)}, 28));
}

void AddIcmpErrors6(std::vector<Fixture>* out) {
  const Family& f = kV6;
  const PacketSpec udp = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  const PacketSpec syn = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn);
  const PacketSpec echo = Echo(f, f.inside, f.remote, true);
  // ICMPv6 errors quote as much as fits (RFC 4443 §2.4(c)): whole packets here.
  out->push_back(InboundError("dest_unreach_port_udp6", f, f.remote, 1, 4, udp, {Build(udp)}));
  out->push_back(InboundError("dest_unreach_admin_tcp6", f, f.router, 1, 1, syn, {Build(syn)}));
  out->push_back(InboundError("packet_too_big_tcp6", f, f.router, 2, 0, syn, {Build(syn)}, 0, 1280));
  out->push_back(InboundError("time_exceeded_udp6", f, f.router, 3, 0, udp, {Build(udp)}));
  out->push_back(InboundError("time_exceeded_tcp6", f, f.router, 3, 0, syn, {Build(syn)}));
  out->push_back(InboundError("time_exceeded_tcp8_6", f, f.router, 3, 0, syn, {Build(syn)}, 40 + 8));
  out->push_back(InboundError("time_exceeded_echo6", f, f.router, 3, 0, echo, {Build(echo)}));
  PacketSpec ones = udp;
  ones.payload = OnesChecksumPayload(udp);
  out->push_back(InboundError("dest_unreach_udp_checksum_ones6", f, f.remote, 1, 4, ones, {Build(ones)}));
  // The quoted packet has extension headers of its own.
  PacketSpec udp_ext = udp;
  udp_ext.ext_headers = {0, 60};
  out->push_back(
      InboundError("packet_too_big_udp_ext_headers6", f, f.router, 2, 0, udp_ext, {Build(udp_ext)}, 0, 1280));
}

// Packets natd refuses, each with its one drop reason.
void AddDrops(const Family& f, std::vector<Fixture>* out) {
  const PacketSpec udp_out = Udp(f, f.inside, f.remote, kUdpPort, kDns);
  const PacketSpec syn_out = Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpSyn);

  PacketSpec gre = udp_out;
  gre.proto = 47;
  out->push_back(Drop(Name("unsupported_protocol", f), {}, Build(gre), DropReason::kUnsupportedProtocol));
  // The other family's ICMP.
  PacketSpec wrong_icmp = Echo(f, f.inside, f.remote, true);
  wrong_icmp.proto = f.family == 4 ? 58 : 1;
  out->push_back(Drop(Name("wrong_family_icmp", f), {}, Build(wrong_icmp), DropReason::kUnsupportedProtocol));
  PacketSpec info = Echo(f, f.inside, f.remote, true);
  info.icmp_type = f.family == 4 ? 13 : 133;  // timestamp / router solicitation
  out->push_back(Drop(Name("unsupported_icmp_type", f), {}, Build(info), DropReason::kUnsupportedIcmpType));

  out->push_back(Drop(Name("udp_unsolicited_in", f), {}, Build(Udp(f, f.remote, f.global, kDns, kUdpPort)),
                      DropReason::kNoMapping));
  out->push_back(Drop(Name("tcp_unsolicited_syn_in", f), {},
                      Build(Tcp(f, f.remote, f.global, kHttps, kTcpPort, kTcpSyn)), DropReason::kNoMapping));
  out->push_back(Drop(Name("echo_reply_unsolicited_in", f), {}, Build(Echo(f, f.remote, f.global, false)),
                      DropReason::kNoMapping));
  // Full-cone lets anyone reach the mapping, but TCP only with a SYN.
  out->push_back(Drop(Name("tcp_ack_other_remote_in", f), {Build(syn_out)},
                      Build(Tcp(f, f.router, f.global, kHttps, kTcpPort, kTcpAck)), DropReason::kTcpNoSession));
  out->push_back(Drop(Name("tcp_rst_no_session_out", f), {},
                      Build(Tcp(f, f.inside, f.remote, kTcpPort, kHttps, kTcpRst)), DropReason::kTcpNoSession));
  out->push_back(Drop(Name("source_is_global", f), {}, Build(WithAddrs(udp_out, f.global, f.remote)),
                      DropReason::kSourceIsGlobal));

  // An inside host's ICMP error about a packet it received (RFC 5508): it
  // leaves quoting the packet as the remote end sent it (full-cone keeps the port).
  const Bytes received = Build(Udp(f, f.remote, f.inside, kDns, kUdpPort));
  const Bytes as_sent = Build(Udp(f, f.remote, f.global, kDns, kUdpPort));
  out->push_back(Forward(Name("icmp_error_out", f), {Build(udp_out)},
                         BuildIcmpError(f.family, f.inside, f.remote, f.dest_unreach, f.port_unreach_code, received),
                         BuildIcmpError(f.family, f.global, f.remote, f.dest_unreach, f.port_unreach_code, as_sent)));
  // ... and one about a packet that never came through natd.
  out->push_back(Drop(Name("icmp_error_out_no_session", f), {},
                      BuildIcmpError(f.family, f.inside, f.remote, f.dest_unreach, f.port_unreach_code, received),
                      DropReason::kIcmpErrorNoSession));
  // Errors about packets natd never sent.
  const Bytes left = Build(WithAddrs(udp_out, f.global, f.remote));
  out->push_back(Drop(Name("icmp_error_no_session", f), {},
                      BuildIcmpError(f.family, f.router, f.global, f.time_exceeded, 0, left),
                      DropReason::kIcmpErrorNoSession));
  const Bytes not_from_global = Build(WithAddrs(udp_out, f.router, f.remote));
  out->push_back(Drop(Name("icmp_error_quote_not_global", f), {Build(udp_out)},
                      BuildIcmpError(f.family, f.router, f.global, f.time_exceeded, 0, not_from_global),
                      DropReason::kIcmpErrorNoSession));
  const Bytes other_port = Build(WithAddrs(Udp(f, f.inside, f.remote, kUdpPort + 1, kDns), f.global, f.remote));
  out->push_back(Drop(Name("icmp_error_quote_other_port", f), {Build(udp_out)},
                      BuildIcmpError(f.family, f.router, f.global, f.time_exceeded, 0, other_port),
                      DropReason::kIcmpErrorNoSession));
}

// Marks a built IPv4 packet as a fragment: `offset8` in 8-byte units, MF.
Bytes Frag4(Bytes p, uint16_t offset8, bool more) {
  Put16(p, 6, uint16_t(offset8 | (more ? 0x2000 : 0)));
  FixIp4HeaderChecksum(p);
  return p;
}
// Sets a built IPv6 packet's Fragment header (the first extension header).
Bytes Frag6(Bytes p, uint16_t offset8, bool more) {
  Put16(p, 40 + 2, uint16_t(offset8 << 3 | (more ? 1 : 0)));
  return p;
}

// A later fragment of a UDP datagram: IP (and Fragment) header and raw
// bytes, no UDP header (built as protocol 253, then labelled UDP).
Bytes BuildRaw(PacketSpec s) {
  s.proto = 253;
  Bytes p = Build(s);
  if (s.family == 4) {
    p[9] = 17;
    FixIp4HeaderChecksum(p);
  } else {
    p[40] = 17;  // the Fragment header's next header
  }
  return p;
}

// The IPv4 Identification a fresh fixture engine gives the first outbound
// datagram without DF (RFC 7857 §10: natd picks it, the inside host's is not
// kept). Its value is arbitrary by design, so it is learned from a probe;
// everything else about the fixtures below is built independently.
uint16_t FirstIpId() {
  natd::NullEventSink sink;
  auto engine = natd::Engine::Create(FixtureConfig(), &sink);
  if (!engine.ok()) throw std::logic_error("fixture engine");
  PacketSpec s = Udp(kV4, kInside4, kRemote4, 4000, kDns);
  s.df = false;
  Bytes p = Build(s);
  if ((*engine)->shard(0).ProcessOne(p.data(), uint32_t(p.size()), 0).action != Action::kForward) {
    throw std::logic_error("fixture probe not forwarded");
  }
  return Be16(p, 4);
}

// Fragments (RFC 4787 REQ-14). The first fragment carries the UDP header
// (its length covers the whole datagram; the builder's checksum covers what
// this fragment holds, and the translation only has to keep it consistent);
// a later fragment carries bytes only, and gets the addresses its first got.
void AddFragments(std::vector<Fixture>* out) {
  for (const Family& f : {kV4, kV6}) {
    const bool v4 = f.family == 4;
    auto frag = [&](const Bytes& p, uint16_t offset8, bool more) {
      return v4 ? Frag4(p, offset8, more) : Frag6(p, offset8, more);
    };
    auto spec = [&](const char* src, const char* dst, uint16_t sport, uint16_t dport, Bytes payload) {
      PacketSpec s = Udp(f, src, dst, sport, dport, std::move(payload));
      if (!v4) s.ext_headers = {44};
      return s;
    };
    const Bytes first = frag(Build(spec(f.inside, f.remote, kUdpPort, kDns, Payload(32, 1))), 0, true);
    PacketSpec first_out_spec = spec(f.global, f.remote, kUdpPort, kDns, Payload(32, 1));
    if (v4) first_out_spec.ip_id = FirstIpId();  // outbound and non-atomic: natd's Identification
    const Bytes first_out = frag(Build(first_out_spec), 0, true);
    out->push_back(Forward(Name("fragment_first", f), {}, first, first_out));
    // A later fragment: its bytes are not a UDP header, so it is built as a
    // raw payload behind the IP (and Fragment) header.
    PacketSpec later_spec = spec(f.inside, f.remote, 0, 0, Payload(24, 2));
    later_spec.proto = 17;
    const Bytes later = frag(BuildRaw(later_spec), 5, false);
    PacketSpec later_out_spec = later_spec;
    later_out_spec.src = f.global;
    if (v4) later_out_spec.ip_id = FirstIpId();  // the Identification its first fragment got
    const Bytes later_out = frag(BuildRaw(later_out_spec), 5, false);
    out->push_back(Forward(Name("fragment_later_after_first", f), {first}, later, later_out));
    // Ahead of its first fragment: held, unchanged, nothing counted as dropped.
    out->push_back(Fixture{Name("fragment_later_before_first", f), {}, later, later,
                           Verdict{Action::kHold, DropReason::kNone, 0}, {}});
    // Inbound: the reply datagram's fragments, after the mapping exists.
    const Bytes udp_out = Build(Udp(f, f.inside, f.remote, kUdpPort, kDns));
    const Bytes in_first = frag(Build(spec(f.remote, f.global, kDns, kUdpPort, Payload(40, 3))), 0, true);
    const Bytes in_first_out = frag(Build(spec(f.remote, f.inside, kDns, kUdpPort, Payload(40, 3))), 0, true);
    out->push_back(Forward(Name("fragment_first_in", f), {udp_out}, in_first, in_first_out));
    PacketSpec in_later_spec = spec(f.remote, f.global, 0, 0, Payload(16, 4));
    const Bytes in_later = frag(BuildRaw(in_later_spec), 6, false);
    in_later_spec.dst = f.inside;
    out->push_back(Forward(Name("fragment_later_in", f), {udp_out, in_first}, in_later,
                           frag(BuildRaw(in_later_spec), 6, false)));
    // A first fragment to a port with no mapping is dropped like a packet.
    out->push_back(Drop(Name("fragment_first_no_mapping", f), {}, in_first, DropReason::kNoMapping));
    // A first fragment too short for its UDP header (RFC 1858's tiny fragment).
    Bytes tiny = first;
    const size_t l4 = v4 ? 20 : 48;
    tiny.resize(l4 + 4);
    if (v4) {
      Put16(tiny, 2, uint16_t(tiny.size()));
      FixIp4HeaderChecksum(tiny);
    } else {
      Put16(tiny, 4, uint16_t(tiny.size() - 40));
    }
    out->push_back(Drop(Name("fragment_tiny", f), {}, tiny, DropReason::kTinyFragment));
    // Hairpinned fragments are not translated.
    const Bytes hairpin = frag(Build(spec(f.inside, f.global, kUdpPort, kDns, Payload(32, 1))), 0, true);
    out->push_back(Drop(Name("fragment_hairpin", f), {}, hairpin, DropReason::kHairpinFragment));
  }
  // A fragmented ICMP error is refused (errors are small; RFC 5508 has no
  // use for fragmenting them).
  const Bytes left = Build(Udp(kV4, kGlobal4, kRemote4, kUdpPort, kDns));
  Bytes err = BuildIcmpError(4, kRouter4, kGlobal4, 11, 0, left);
  out->push_back(Drop("fragment_icmp_error4", {}, Frag4(err, 0, true), DropReason::kFragmentedIcmpError));
}

}  // namespace

natd::EngineConfig FixtureConfig() {
  natd::EngineConfig c;
  natd::Ip4 g4;
  natd::Ip6 g6;
  if (!natd::ParseIp4(kGlobal4, &g4) || !natd::ParseIp6(kGlobal6, &g6)) {
    throw std::logic_error("fixture global addresses do not parse");
  }
  c.global4 = g4;
  c.global6 = g6;
  c.shards = 1;
  c.ports = *natd::PortSet::Range(1024, 65535);
  c.tcp = c.udp = c.icmp = *natd::PresetByName("full-cone");
  c.inside = *natd::PrefixSet::Parse("198.18.0.0/24,fd00:18::/64");
  c.seed = 0x5eed;
  c.max_sessions = 1024;
  return c;
}

std::vector<Fixture> AllFixtures() {
  std::vector<Fixture> out;
  AddTraffic(kV4, &out);
  AddTraffic(kV6, &out);
  AddIp4Specials(&out);
  AddIp6Specials(&out);
  AddIcmpErrors4(&out);
  AddIcmpErrors6(&out);
  AddDrops(kV4, &out);
  AddDrops(kV6, &out);
  AddFragments(&out);
  // Any packet to 192.0.2.2 is a status request, whatever it carries.
  Bytes status = Build(Udp(kV4, kInside4, "192.0.2.2", kUdpPort, 9));
  out.push_back(Fixture{"status_request4", {}, status, status, Verdict{Action::kStatus, DropReason::kNone}, {}});
  return out;
}

}  // namespace natd::testing

#include "tools/pcp_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace natd {
namespace {

int64_t MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

// Lifetime an error answer carries: how long before the client may retry
// (RFC 6887 §7.4 suggests 30 s for errors that may clear up).
constexpr uint32_t kErrorLifetime = 30;

const char* ProtoName(uint8_t p) { return p == 6 ? "tcp" : p == 17 ? "udp" : "?"; }

}  // namespace

PcpServer::PcpServer(const PcpServerOptions& o, PortMapper* m, std::function<void(std::string)> log)
    : opt_(o), mapper_(m), log_(std::move(log)), start_s_(MonotonicSeconds()), max_lifetime_s_(o.max_lifetime_s) {}

absl::StatusOr<std::unique_ptr<PcpServer>> PcpServer::Start(const PcpServerOptions& o, PortMapper* mapper,
                                                            std::function<void(std::string)> log) {
  std::unique_ptr<PcpServer> s(new PcpServer(o, mapper, std::move(log)));
  for (const std::string& a : o.listen) {
    sockaddr_storage ss{};
    socklen_t sl;
    int family;
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, a.c_str(), &s4->sin_addr) == 1) {
      s4->sin_family = AF_INET;
      s4->sin_port = htons(pcp::kServerPort);
      sl = sizeof *s4;
      family = AF_INET;
    } else if (inet_pton(AF_INET6, a.c_str(), &s6->sin6_addr) == 1) {
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(pcp::kServerPort);
      sl = sizeof *s6;
      family = AF_INET6;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("'", a, "' is not an IPv4 or IPv6 address"));
    }
    const int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    s->fds_.push_back(fd);
    if (family == AF_INET6) {
      const int one = 1;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot listen on [", a, "]:", pcp::kServerPort, ": ", std::strerror(errno)));
    }
  }
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

PcpServer::~PcpServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (int fd : fds_) close(fd);
}

void PcpServer::Log(std::string line) {
  const int64_t now = MonotonicSeconds();
  if (now != log_second_) {
    log_second_ = now;
    logged_this_second_ = 0;
  }
  if (++logged_this_second_ <= 20 && log_) log_(std::move(line));
}

void PcpServer::Loop() {
  std::vector<pollfd> pfds;
  for (int fd : fds_) pfds.push_back({fd, POLLIN, 0});
  uint8_t in[pcp::kMaxMessage + 4], out[pcp::kMaxMessage];
  while (!stop_.load()) {
    if (poll(pfds.data(), pfds.size(), 100) <= 0) continue;
    for (const pollfd& p : pfds) {
      if (!(p.revents & POLLIN)) continue;
      sockaddr_storage from{};
      socklen_t fl = sizeof from;
      const ssize_t n = recvfrom(p.fd, in, sizeof in, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n <= 0) continue;
      requests_.fetch_add(1);
      const bool v4 = from.ss_family == AF_INET;
      const uint8_t* src = v4 ? reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in*>(&from)->sin_addr)
                              : reinterpret_cast<const uint8_t*>(&reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr);
      const size_t m = Answer(in, size_t(n), v4 ? 4 : 6, src, out, sizeof out);
      if (m > 0) sendto(p.fd, out, m, 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }
}

size_t PcpServer::Answer(const uint8_t* in, size_t len, int family, const uint8_t* src, uint8_t* out, size_t cap) {
  pcp::Request req;
  if (!pcp::Parse(in, len, &req)) return 0;
  pcp::Answer a;
  a.epoch = uint32_t(MonotonicSeconds() - start_s_);
  // The host's own global address: paired pooling gives each inside
  // address one, the one every mapping of it uses (addr.h PairedIndex).
  const bool have_global = family == 4 ? !opt_.globals4.empty() : !opt_.globals6.empty();
  if (family == 4 && have_global) {
    uint8_t g[4];
    opt_.globals4[PairedIndex(Ip4::Load(src), opt_.globals4.size())].Store(g);
    pcp::MapV4(g, a.external_ip);
  } else if (family == 6 && have_global) {
    opt_.globals6[PairedIndex(Ip6::Load(src), opt_.globals6.size())].Store(a.external_ip);
  }
  std::string who = family == 4 ? ToString(Ip4::Load(src)) : ToString(Ip6::Load(src));
  auto fail = [&](pcp::Result r) {
    req.error = r;
    a.lifetime = kErrorLifetime;
    return pcp::Build(req, a, in, len, out, cap);
  };
  if (req.kind == pcp::Kind::kNatPmp && family != 4) return 0;  // NAT-PMP is IPv4 only
  if (req.error != pcp::Result::kSuccess) return fail(req.error);
  if (!opt_.inside.Contains(family, src)) {
    Log(absl::StrCat("pcp: refused ", who, ": not an inside address"));
    return fail(pcp::Result::kNotAuthorized);
  }
  if (req.kind == pcp::Kind::kPcp) {
    uint8_t source[16];
    if (family == 4) {
      pcp::MapV4(src, source);
    } else {
      std::memcpy(source, src, 16);
    }
    // RFC 6887 §8.1: the client's own view of its address must be the source.
    if (std::memcmp(source, req.client, 16) != 0) return fail(pcp::Result::kAddressMismatch);
  }
  if (!have_global) return fail(pcp::Result::kNetworkFailure);
  if (req.op == pcp::Op::kExternalAddress || req.op == pcp::Op::kAnnounce) {
    return pcp::Build(req, a, in, len, out, cap);
  }
  // MAP. PCP: a suggested external address other than natd's is a wish natd
  // cannot grant; it is ignored unless the client prefers failure.
  if (req.kind == pcp::Kind::kPcp) {
    static constexpr uint8_t kZero[16] = {};
    uint8_t zero4[16];
    const uint8_t z[4] = {};
    pcp::MapV4(z, zero4);
    const bool any = std::memcmp(req.suggested_ip, kZero, 16) == 0 || std::memcmp(req.suggested_ip, zero4, 16) == 0;
    if (!any && std::memcmp(req.suggested_ip, a.external_ip, 16) != 0 && req.prefer_failure) {
      return fail(pcp::Result::kCannotProvideExternal);
    }
    if (req.internal_port == 0 && req.lifetime != 0) return fail(pcp::Result::kMalformedRequest);
  }
  const uint32_t lifetime = std::min(req.lifetime, max_lifetime_s_.load(std::memory_order_relaxed));
  const PortMapper::Mapped m =
      mapper_->Map(family, src, req.protocol, req.internal_port, req.suggested_port, lifetime, req.prefer_failure);
  a.result = m.result;
  a.external_port = m.external_port;
  a.lifetime = m.result == pcp::Result::kSuccess ? m.lifetime_s : kErrorLifetime;
  if (lifetime == 0) {
    Log(absl::StrCat("pcp: ", who, " deleted ", ProtoName(req.protocol), " ", req.internal_port));
  } else if (m.result == pcp::Result::kSuccess) {
    Log(absl::StrCat("pcp: ", who, " mapped ", ProtoName(req.protocol), " ", req.internal_port, " -> external ",
                     m.external_port, " for ", m.lifetime_s, "s"));
  } else {
    Log(absl::StrCat("pcp: ", who, " map ", ProtoName(req.protocol), " ", req.internal_port, " refused (result ",
                     int(m.result), ")"));
  }
  return pcp::Build(req, a, in, len, out, cap);
}

}  // namespace natd

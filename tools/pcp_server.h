// PcpServer: natd's PCP (RFC 6887) and NAT-PMP (RFC 6886) server, off by
// default (--pcp). One thread, UDP sockets on port 5351 of the router's
// inside addresses; for each request:
//
//   recvfrom ─▶ pcp::Parse ─▶ checks (an inside source; PCP: the client
//   address is the source) ─▶ PortMapper::Map (runs on the worker that owns
//   the inside endpoint; see engine_port_mapper.h) ─▶ pcp::Build ─▶ sendto
//
// The server keeps no mapping state of its own: the tables do (explicit
// mappings, nat/mapping_table.h), so a mapping made this way expires at its
// lifetime there and never clashes with a dynamic one. The epoch (seconds
// since natd's mapping state began) tells clients when natd restarted and
// their mappings are gone (RFC 6887 §8.5).
#ifndef NATD_TOOLS_PCP_SERVER_H_
#define NATD_TOOLS_PCP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "nat/addr.h"
#include "nat/pcp.h"
#include "nat/prefix_set.h"

namespace natd {

class PortMapper {
 public:
  virtual ~PortMapper() = default;
  struct Mapped {
    pcp::Result result = pcp::Result::kSuccess;
    uint16_t external_port = 0;
    uint32_t lifetime_s = 0;  // granted
  };
  // Creates or refreshes (lifetime > 0) or deletes (lifetime 0) the explicit
  // mapping of inside:internal_port for `protocol` (6 or 17); internal port
  // 0 with lifetime 0 deletes every explicit mapping of the inside address
  // for the protocol. `inside` holds 4 or 16 bytes per `family`.
  virtual Mapped Map(int family, const uint8_t* inside, uint8_t protocol, uint16_t internal_port,
                     uint16_t suggested_port, uint32_t lifetime_s, bool prefer_failure) = 0;
};

struct PcpServerOptions {
  std::vector<std::string> listen;  // inside addresses of the router, IPv4 or IPv6
  PrefixSet inside;                 // who may ask
  // The global addresses (pools): a host's is PairedIndex's pick.
  std::vector<Ip4> globals4;
  std::vector<Ip6> globals6;
  uint32_t max_lifetime_s = 24 * 3600;
};

class PcpServer {
 public:
  // Opens the sockets (a bad address or a port in use is an error naming it)
  // and starts the thread. `mapper` and `log` must outlive the server; log
  // lines go to `log` (rate-limited).
  static absl::StatusOr<std::unique_ptr<PcpServer>> Start(const PcpServerOptions& options, PortMapper* mapper,
                                                         std::function<void(std::string)> log);
  ~PcpServer();

  uint64_t requests() const { return requests_.load(); }
  // The longest lifetime granted from now on (SIGHUP); mappings already
  // granted keep theirs.
  void SetMaxLifetime(uint32_t seconds) { max_lifetime_s_.store(seconds, std::memory_order_relaxed); }

 private:
  PcpServer(const PcpServerOptions& o, PortMapper* m, std::function<void(std::string)> log);
  void Loop();
  // The answer to one datagram from `src` (family 4 or 6); 0: none.
  size_t Answer(const uint8_t* in, size_t len, int family, const uint8_t* src, uint8_t* out, size_t cap);
  void Log(std::string line);

  const PcpServerOptions opt_;
  PortMapper* const mapper_;
  const std::function<void(std::string)> log_;
  const int64_t start_s_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint32_t> max_lifetime_s_;
  int64_t log_second_ = -1;
  uint32_t logged_this_second_ = 0;
  std::thread thread_;
};

}  // namespace natd

#endif  // NATD_TOOLS_PCP_SERVER_H_

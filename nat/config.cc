#include "nat/config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace natd {
namespace {

// A global address must not be one an inside host could have.
template <typename A>
absl::Status CheckNotInside(const A& a, const PrefixSet& inside) {
  if (!inside.Contains(a)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the inside prefixes (", inside.ToString(), ") contain the global address ", ToString(a)));
}

// A family's further pool addresses (`more`, after its first): each given
// once, none inside.
template <typename A>
absl::Status CheckPool(const std::optional<A>& first, const std::vector<A>& more, const PrefixSet& inside) {
  for (size_t i = 0; i < more.size(); ++i) {
    if (more[i] == *first || std::find(more.begin(), more.begin() + i, more[i]) != more.begin() + i) {
      return absl::InvalidArgumentError(absl::StrCat("global address ", ToString(more[i]), " given twice"));
    }
    if (absl::Status s = CheckNotInside(more[i], inside); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateConfig(const EngineConfig& c) {
  if (!c.global4 && !c.global6) {
    return absl::InvalidArgumentError("no global address: set a global IPv4 and/or IPv6 address");
  }
  if (c.shards < 1 || c.shards > PortPlan::kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat("shards must be 1..", PortPlan::kMaxShards, ", got ", c.shards));
  }
  if (c.ports.ports().size() < c.shards) {
    return absl::InvalidArgumentError(absl::StrCat("port set ", c.ports.description(), " has ", c.ports.ports().size(),
                                                   " ports, fewer than the ", c.shards, " shards"));
  }
  if (c.max_sessions < c.shards) {
    return absl::InvalidArgumentError(absl::StrCat("max sessions ", c.max_sessions, " is below the shard count"));
  }
  if (c.max_sessions > (1u << 28)) {
    return absl::InvalidArgumentError(absl::StrCat("max sessions ", c.max_sessions, " is above 2^28"));
  }
  if ((!c.more_global4.empty() && !c.global4) || (!c.more_global6.empty() && !c.global6)) {
    return absl::InvalidArgumentError("a pool of global addresses needs its first one");
  }
  if (c.more_global4.size() > 63 || c.more_global6.size() > 63) {
    return absl::InvalidArgumentError("at most 64 global addresses per family");
  }
  if (absl::Status s = CheckPool(c.global4, c.more_global4, c.inside); !s.ok()) return s;
  if (absl::Status s = CheckPool(c.global6, c.more_global6, c.inside); !s.ok()) return s;
  if (c.global4) {
    if (absl::Status s = CheckNotInside(*c.global4, c.inside); !s.ok()) return s;
  }
  if (c.global6) {
    if (absl::Status s = CheckNotInside(*c.global6, c.inside); !s.ok()) return s;
  }
  if (c.fragment_timeout_ms <= 0) return absl::InvalidArgumentError("fragment timeout must be positive");
  if (c.port_probes < 1) return absl::InvalidArgumentError("port probes must be at least 1");
  const Timeouts& t = c.timeouts;
  if (t.udp_ms < kMinUdpTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("UDP timeout ", t.udp_ms / 1000, " s is under 2 min (RFC 4787 REQ-5)"));
  }
  if (t.tcp_established_ms <= 0 || t.tcp_transitory_ms <= 0 || t.icmp_ms <= 0) {
    return absl::InvalidArgumentError("timeouts must be positive");
  }
  if (t.tcp_transitory_ms > t.tcp_established_ms) {
    return absl::InvalidArgumentError("TCP transitory timeout is longer than the established one");
  }
  return absl::OkStatus();
}

}  // namespace natd

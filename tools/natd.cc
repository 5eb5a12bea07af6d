// natd: the daemon. Wires the engine (nat/) to the dataplane (tun/):
//
//   flags -> EngineConfig -> Engine          (nat/engine.h)
//   TunDevice (one fd per queue)             (tun/tun_device.h)
//   Pipeline: readers -> workers -> writer   (tun/pipeline.h)
//   EventLog: the logging thread             (tools/event_log.h)
//
// Signals are taken by the main thread alone (sigwait): SIGINT/SIGTERM stop
// reading, drain, join and print totals; SIGUSR1 prints the status, as does
// any packet sent to 192.0.2.2; SIGHUP reopens the log file (log rotation)
// and reloads the settings, leaving every mapping as it is.
//
// Reloading (SIGHUP, Reload below, tools/live_config.h): natd's command line
// is evaluated again with its --flagfile(s) read as they are now (a line
// removed: that flag's default) and checked by SettingsFromFlags, the same
// checks as at start. Anything bad (a value that does not parse or is out of
// range, an unknown flag, an unreadable file) rejects the whole reload with
// a log line naming the flag, and natd runs on as it was. Otherwise the live
// settings (LiveFlags: the four timeouts, --udp_inbound_refresh,
// --max_sessions_per_host, --icmp_prohibited_per_second,
// --log_invalid_per_second, --pcp_max_lifetime) are applied, each shard's on
// its own worker (Pipeline::RunOnWorker, Shard::ApplyLive), and logged in
// one line ("natd: reload: udp_timeout 5m -> 3m, ..."); every other changed
// flag is logged as needing a restart and ignored. Existing sessions keep
// their expiry, capped at now + a shortened timeout; new sessions and
// refreshes use the new timeouts (MappingTable::SetLive).
//
// Restarts without loss (--state_file=PATH, tools/state_store.h): at start,
// before the first packet is read, the tables are restored from PATH when it
// holds a valid file written with the same ports, global addresses, workers
// and behaviours (anything else is refused, logged with its reason, and
// natd starts empty); on SIGINT/SIGTERM, once the workers are joined and the
// tables hold still, every live session is saved there (atomically), so a
// connection through natd survives its restart.
//
// Port mapping (--pcp=ADDR[,ADDR], tools/pcp_server.h): inside hosts ask for
// explicit mappings over PCP (RFC 6887) or NAT-PMP (RFC 6886) on UDP port
// 5351 of the given inside addresses of the router; each request runs on the
// worker that owns the host's endpoint (engine_port_mapper.h).
#include <malloc.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "nat/engine.h"
#include "tools/engine_port_mapper.h"
#include "tools/engine_processor.h"
#include "tools/event_log.h"
#include "tools/live_config.h"
#include "tools/pcp_server.h"
#include "tools/privileges.h"
#include "tools/state_store.h"
#include "tun/pipeline.h"
#include "tun/tun_device.h"

ABSL_FLAG(std::string, device, "natd0", "TUN device to create or attach to");
ABSL_FLAG(uint32_t, queues, 1, "TUN queues, one reader thread each (1..64)");
ABSL_FLAG(uint32_t, workers, 1, "NAT workers, one table shard each (1..254)");
ABSL_FLAG(std::string, global4, "",
          "global IPv4 address, or a pool of them 'A,B,...' (paired: each inside host keeps one); empty: no NAPT44");
ABSL_FLAG(std::string, global6, "", "global IPv6 address, or a pool of them 'A,B,...'; empty: no NAPT66");
ABSL_FLAG(std::string, inside, "private",
          "the inside networks (CIDR prefixes, comma-separated): a packet from one of them to a global address is "
          "hairpinned to the inside host holding that external port; from anywhere else it is inbound. 'private': "
          "10/8, 172.16/12, 192.168/16 and fc00::/7, less any that holds a global address (natd behind another "
          "NAT); 'none': no hairpinning");
ABSL_FLAG(std::string, preset, "port-restricted-cone",
          "NAT behaviour for every protocol: full-cone, restricted-cone, port-restricted-cone, symmetric, "
          "quasi-restricted-cone, quasi-port-restricted-cone, quasi-symmetric, address-dependent, "
          "address-port-dependent");
ABSL_FLAG(std::string, tcp_preset, "", "NAT behaviour for TCP (default: --preset)");
ABSL_FLAG(std::string, udp_preset, "", "NAT behaviour for UDP (default: --preset)");
ABSL_FLAG(std::string, icmp_preset, "", "NAT behaviour for ICMP echo (default: --preset)");
ABSL_FLAG(std::string, ports, "1024-65535",
          "external ports: ranges 'LO-HI[,LO-HI...]', or a MAP-E port set 'v6plus:PSID', 'ocn-vc:PSID', "
          "'map-e:a=A,k=K,m=M,psid=P'");
ABSL_FLAG(absl::Duration, tcp_established_timeout, absl::Minutes(124), "idle timeout of established TCP");
ABSL_FLAG(absl::Duration, tcp_transitory_timeout, absl::Minutes(4), "idle timeout of opening/closing TCP");
ABSL_FLAG(absl::Duration, udp_timeout, absl::Minutes(5), "idle timeout of UDP (at least 2m)");
ABSL_FLAG(absl::Duration, icmp_timeout, absl::Seconds(60), "idle timeout of ICMP echo");
ABSL_FLAG(bool, udp_inbound_refresh, false, "inbound UDP refreshes a mapping too");
ABSL_FLAG(uint32_t, max_sessions, 1 << 18, "sessions per protocol and address family, over all workers");
ABSL_FLAG(uint32_t, max_sessions_per_host, 0,
          "sessions one inside address may hold per protocol and family (0: no limit; RFC 6888 REQ-4)");
ABSL_FLAG(uint32_t, icmp_prohibited_per_second, 100,
          "answers (ICMP administratively prohibited) to inside hosts whose new flow natd refuses, per second "
          "and worker (0: none)");
ABSL_FLAG(uint32_t, fragment_datagrams, 4096,
          "fragmented datagrams tracked at once, over all workers (their first fragment names the session)");
ABSL_FLAG(uint32_t, fragments_held, 512,
          "fragments held while their datagram's first fragment has not arrived, over all workers");
ABSL_FLAG(uint32_t, fragment_held_bytes, 4 << 20, "bytes of fragments held at once, over all workers");
ABSL_FLAG(absl::Duration, fragment_timeout, absl::Seconds(5),
          "how long a fragmented datagram is remembered after its last fragment (and a held fragment waits)");
ABSL_FLAG(uint32_t, mtu, 1500, "MTU of the TUN device");
ABSL_FLAG(bool, offload, true,
          "TUN offloads (IFF_VNET_HDR: checksum, TCP and UDP segmentation) where the kernel supports them: "
          "64 KB super-packets cross natd whole");
ABSL_FLAG(bool, io_uring, true,
          "read and write the TUN in batches through io_uring (one system call per batch instead of one per "
          "packet); where the kernel refuses it, natd says why and uses read()/write()");
ABSL_FLAG(uint32_t, busy_poll_us, 0,
          "once the TUN has run dry, keep looking for packets this many microseconds before sleeping: a packet "
          "that comes within it skips a thread wake-up (lower latency), at the price of a core kept busy while "
          "packets keep coming less than this apart; 0 (the default): sleep at once. At most 1000000");
ABSL_FLAG(uint32_t, pool_buffers, 2048,
          "packet buffers, allocated at start (each holds the largest packet the TUN can hand over: "
          "64 KB with offloads, the MTU without)");
ABSL_FLAG(bool, prefault, true,
          "make the tables and packet buffers resident at start, so that natd's resident memory is what its "
          "limits imply from the first second and never creeps up (false: pages become resident as traffic "
          "first reaches them)");
ABSL_FLAG(uint32_t, queue_depth, 4096, "packets each worker queue and the writer queue may hold");
ABSL_FLAG(bool, run_to_completion, true,
          "with one queue and one worker, one thread reads, translates and writes each batch (no hand-off "
          "between threads: lower latency); false: reader, worker and writer threads as with several");
ABSL_FLAG(uint32_t, batch, 64, "packets read, translated and written per batch");
ABSL_FLAG(std::string, log_file, "-", "log file ('-' for stderr)");
ABSL_FLAG(std::string, user, "",
          "once the TUN is open, run as this user (name or uid), with no capabilities left (empty: stay as started)");
ABSL_FLAG(std::string, group, "", "with --user: run as this group (default: the user's primary group)");
ABSL_FLAG(uint32_t, log_invalid_per_second, 20, "cap on logged invalid/untranslatable packets per second");
ABSL_FLAG(std::string, pcp, "",
          "PCP (RFC 6887) and NAT-PMP (RFC 6886) server: the router's inside addresses to answer on, UDP port 5351, "
          "comma-separated (empty: off). Inside hosts (--inside) may then map ports for a lifetime");
ABSL_FLAG(uint32_t, pcp_mappings, 1024, "with --pcp: explicit mappings per protocol and family, over all workers");
ABSL_FLAG(uint32_t, pcp_mappings_per_host, 64, "with --pcp: explicit mappings one inside address may hold per protocol");
ABSL_FLAG(absl::Duration, pcp_max_lifetime, absl::Hours(24), "with --pcp: the longest lifetime granted");
ABSL_FLAG(std::string, state_file, "",
          "save the mappings here on SIGTERM/SIGINT and restore them at start, so connections survive a restart; "
          "the file is refused (natd starts empty) if written with other ports, global addresses, workers or presets "
          "(empty: off)");

namespace natd {
namespace {

// The engine's clock (the dataplane's: monotonic, ms) and the wall clock,
// which a state file needs to know how long natd was down.
int64_t ClockMs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

[[noreturn]] void Fail(const std::string& msg) {
  std::fprintf(stderr, "natd: %s\n", msg.c_str());
  std::exit(2);
}

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

absl::StatusOr<Behavior> PresetFlag(const char* flag, const std::string& value) {
  auto b = PresetByName(value);
  if (!b.ok()) return Invalid(absl::StrCat("--", flag, ": ", std::string(b.status().message())));
  return *b;
}

// A --global4/--global6 value: one address, or a pool "A,B,..." whose first
// goes to `first` and the rest to `more`.
template <typename A>
absl::Status ParsePool(const char* flag, const std::string& value, bool (*parse)(const std::string&, A*),
                       const char* what, std::optional<A>* first, std::vector<A>* more) {
  for (absl::string_view g : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    A a;
    if (!parse(std::string(g), &a)) {
      return Invalid(absl::StrCat(flag, ": '", std::string(g), "' is not ", what, " address"));
    }
    if (*first) {
      more->push_back(a);
    } else {
      *first = a;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineConfig> ConfigFromFlags() {
  EngineConfig c;
  c.shards = absl::GetFlag(FLAGS_workers);
  if (c.shards < 1 || c.shards > PortPlan::kMaxShards) return Invalid("--workers: must be 1..254");
  // One address, or a pool "A,B,..." (the first is the pool's first).
  if (absl::Status s = ParsePool("--global4", absl::GetFlag(FLAGS_global4), ParseIp4, "an IPv4", &c.global4,
                                 &c.more_global4);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParsePool("--global6", absl::GetFlag(FLAGS_global6), ParseIp6, "an IPv6", &c.global6,
                                 &c.more_global6);
      !s.ok()) {
    return s;
  }
  if (!c.global4 && !c.global6) return Invalid("--global4 or --global6: at least one global address is needed");
  if (const std::string in = absl::GetFlag(FLAGS_inside); in == "private") {
    c.inside = PrefixSet::Private();
    if (c.global4) c.inside = c.inside.Without(*c.global4);
    if (c.global6) c.inside = c.inside.Without(*c.global6);
    for (const Ip4& a : c.more_global4) c.inside = c.inside.Without(a);
    for (const Ip6& a : c.more_global6) c.inside = c.inside.Without(a);
  } else {
    auto inside = PrefixSet::Parse(in == "none" ? "" : in);
    if (!inside.ok()) return Invalid(absl::StrCat("--inside: ", std::string(inside.status().message())));
    c.inside = *std::move(inside);
    if ((c.global4 && c.inside.Contains(*c.global4)) || (c.global6 && c.inside.Contains(*c.global6))) {
      return Invalid(absl::StrCat("--inside: ", c.inside.ToString(), " contains a global address"));
    }
  }
  const std::string preset = absl::GetFlag(FLAGS_preset);
  if (auto b = PresetFlag("preset", preset); !b.ok()) return b.status();
  for (auto [flag, value, out] : {std::tuple{"tcp_preset", absl::GetFlag(FLAGS_tcp_preset), &c.tcp},
                                  std::tuple{"udp_preset", absl::GetFlag(FLAGS_udp_preset), &c.udp},
                                  std::tuple{"icmp_preset", absl::GetFlag(FLAGS_icmp_preset), &c.icmp}}) {
    auto b = PresetFlag(flag, value.empty() ? preset : value);
    if (!b.ok()) return b.status();
    *out = *b;
  }
  auto ports = PortSet::Parse(absl::GetFlag(FLAGS_ports));
  if (!ports.ok()) return Invalid(absl::StrCat("--ports: ", std::string(ports.status().message())));
  c.ports = *std::move(ports);
  if (c.ports.ports().size() < c.shards) {
    return Invalid(absl::StrCat("--ports/--workers: ", c.ports.ports().size(), " ports cannot be split over ",
                                c.shards, " workers"));
  }
  auto timeouts = TimeoutsFrom(absl::GetFlag(FLAGS_tcp_established_timeout),
                               absl::GetFlag(FLAGS_tcp_transitory_timeout), absl::GetFlag(FLAGS_udp_timeout),
                               absl::GetFlag(FLAGS_icmp_timeout));
  if (!timeouts.ok()) return timeouts.status();
  c.timeouts = *timeouts;
  c.udp_inbound_refresh = absl::GetFlag(FLAGS_udp_inbound_refresh);
  c.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  c.max_sessions_per_host = absl::GetFlag(FLAGS_max_sessions_per_host);
  c.prefault = absl::GetFlag(FLAGS_prefault);
  c.icmp_prohibited_per_second = absl::GetFlag(FLAGS_icmp_prohibited_per_second);
  if (!absl::GetFlag(FLAGS_pcp).empty()) {
    c.explicit_mappings = absl::GetFlag(FLAGS_pcp_mappings);
    c.explicit_per_host = absl::GetFlag(FLAGS_pcp_mappings_per_host);
    if (c.explicit_mappings == 0 || c.explicit_mappings > (1u << 20)) {
      return Invalid("--pcp_mappings: must be 1..1048576");
    }
    const absl::Duration lifetime = absl::GetFlag(FLAGS_pcp_max_lifetime);
    if (lifetime < absl::Seconds(1) || lifetime > absl::Hours(8760)) {
      return Invalid("--pcp_max_lifetime: must be 1s..8760h");
    }
    for (absl::string_view a : absl::StrSplit(absl::GetFlag(FLAGS_pcp), ',', absl::SkipEmpty())) {
      Ip4 v4;
      Ip6 v6;
      if (!ParseIp4(std::string(a), &v4) && !ParseIp6(std::string(a), &v6)) {
        return Invalid(absl::StrCat("--pcp: '", std::string(a), "' is not an IPv4 or IPv6 address"));
      }
    }
  }
  c.fragment_datagrams = absl::GetFlag(FLAGS_fragment_datagrams);
  c.fragments_held = absl::GetFlag(FLAGS_fragments_held);
  c.fragment_held_bytes = absl::GetFlag(FLAGS_fragment_held_bytes);
  auto fragment_timeout = DurationMs("fragment_timeout", absl::GetFlag(FLAGS_fragment_timeout));
  if (!fragment_timeout.ok()) return fragment_timeout.status();
  c.fragment_timeout_ms = *fragment_timeout;
  if (c.fragment_datagrams > (1u << 24)) return Invalid("--fragment_datagrams: at most 2^24");
  if (c.fragments_held > c.fragment_datagrams * 64ull) {
    return Invalid("--fragments_held: at most 64 per tracked datagram");
  }
  if (c.max_sessions < c.shards || c.max_sessions > (1u << 28)) {
    return Invalid("--max_sessions: must be between --workers and 2^28");
  }
  if (absl::Status s = ValidateConfig(c); !s.ok()) return s;
  return c;
}

// Everything the flags say, checked before any device or file is opened:
// at start, and on SIGHUP for the values re-read (tools/live_config.h).
struct Settings {
  EngineConfig engine;
  // buffer_size is set once the device says how large a packet it hands over.
  tun::PipelineOptions pipeline;
  uint32_t mtu = 0;
  uint32_t queues = 0;
  std::optional<Credentials> run_as;
  uint32_t log_invalid_per_second = 0;
  uint32_t pcp_max_lifetime_s = 0;
};

absl::StatusOr<Settings> SettingsFromFlags() {
  Settings s;
  auto engine = ConfigFromFlags();
  if (!engine.ok()) return engine.status();
  s.engine = *std::move(engine);
  s.mtu = absl::GetFlag(FLAGS_mtu);
  if (s.mtu < 1280 || s.mtu > 65535) return Invalid("--mtu: must be 1280..65535");
  s.queues = absl::GetFlag(FLAGS_queues);
  if (s.queues < 1 || s.queues > 64) return Invalid("--queues: must be 1..64");
  tun::PipelineOptions& o = s.pipeline;
  o.pool_buffers = absl::GetFlag(FLAGS_pool_buffers);
  o.queue_depth = absl::GetFlag(FLAGS_queue_depth);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.run_to_completion = absl::GetFlag(FLAGS_run_to_completion);
  o.prefault = absl::GetFlag(FLAGS_prefault);
  if (o.pool_buffers < 64 || o.pool_buffers > (1u << 22)) return Invalid("--pool_buffers: must be 64..4194304");
  if (o.queue_depth < 16 || o.queue_depth > (1u << 22)) return Invalid("--queue_depth: must be 16..4194304");
  if (o.batch < 1 || o.batch > 1024) return Invalid("--batch: must be 1..1024");
  if (absl::GetFlag(FLAGS_busy_poll_us) > 1000000) return Invalid("--busy_poll_us: must be 0..1000000");
  if (const std::string user = absl::GetFlag(FLAGS_user); !user.empty()) {
    auto c = ResolveCredentials(user, absl::GetFlag(FLAGS_group));
    if (!c.ok()) return c.status();
    s.run_as = *c;
  } else if (!absl::GetFlag(FLAGS_group).empty()) {
    return Invalid("--group: needs --user");
  }
  s.log_invalid_per_second = absl::GetFlag(FLAGS_log_invalid_per_second);
  s.pcp_max_lifetime_s = uint32_t(
      std::clamp<int64_t>(absl::ToInt64Seconds(absl::GetFlag(FLAGS_pcp_max_lifetime)), 1, 8760 * 3600));
  return s;
}

// The flags SIGHUP applies to a running natd; any other that changed is
// reported and ignored.
const absl::flat_hash_set<std::string>& LiveFlags() {
  static const auto* live = new absl::flat_hash_set<std::string>{
      "tcp_established_timeout", "tcp_transitory_timeout",     "udp_timeout",
      "icmp_timeout",            "udp_inbound_refresh",        "max_sessions_per_host",
      "icmp_prohibited_per_second", "log_invalid_per_second", "pcp_max_lifetime"};
  return *live;
}

// SIGHUP: the command line evaluated again with its flagfile(s) re-read.
// Checked like a start; if anything is bad, nothing changes. Restart-only
// changes are logged and ignored; live ones go to each shard as a task on
// its own worker (Shard::ApplyLive), to the log's rate limit and to the PCP
// server. The tables are never touched otherwise: every mapping stays.
void Reload(const std::vector<std::string>& args, Settings* running, Engine* engine, tun::Pipeline* pipeline,
            EventLog* events, PcpServer* pcp) {
  if (absl::GetFlag(FLAGS_flagfile).empty()) {
    events->Line("natd: reload: started without --flagfile: no setting to re-read\n");
    return;
  }
  Settings next;
  auto changes = PlanReload(args, __FILE__, LiveFlags(), [&next] {
    auto s = SettingsFromFlags();
    if (!s.ok()) return s.status();
    next = *std::move(s);
    return absl::OkStatus();
  });
  if (!changes.ok()) {
    events->Line(absl::StrCat("natd: reload: rejected, the running settings stay: ",
                              std::string(changes.status().message()), "\n"));
    return;
  }
  auto shown = [](const std::string& v) { return v.empty() ? std::string("''") : v; };
  bool live = false;
  for (const FlagChange& c : *changes) {
    live |= c.live;
    if (c.live) continue;
    events->Line(absl::StrCat("natd: reload: --", c.name, " changed from ", shown(c.from), " to ", shown(c.to),
                              ": needs a restart; ignored\n"));
  }
  if (!live) {
    events->Line(changes->empty() ? "natd: reload: no setting changed\n" : "natd: reload: no live setting changed\n");
    return;
  }
  EngineConfig& e = running->engine;
  e.timeouts = next.engine.timeouts;
  e.udp_inbound_refresh = next.engine.udp_inbound_refresh;
  e.max_sessions_per_host = next.engine.max_sessions_per_host;
  e.icmp_prohibited_per_second = next.engine.icmp_prohibited_per_second;
  auto config = std::make_shared<const EngineConfig>(e);
  for (uint32_t w = 0; w < engine->shards(); ++w) {
    pipeline->RunOnWorker(w, [engine, w, config](int64_t now_ms) { engine->shard(w).ApplyLive(*config, now_ms); });
  }
  running->log_invalid_per_second = next.log_invalid_per_second;
  events->SetInvalidPerSecond(next.log_invalid_per_second);
  running->pcp_max_lifetime_s = next.pcp_max_lifetime_s;
  if (pcp) pcp->SetMaxLifetime(next.pcp_max_lifetime_s);
  CommitLive(*changes);
  events->Line(absl::StrCat("natd: reload: ", DescribeLive(*changes), "\n"));
}

int Main(int argc, char** argv) {
  // A fixed mmap threshold (glibc raises it, by default, to the size of the
  // largest block freed): a transient block this big or bigger, such as a
  // status dump of a large table, comes from mmap and goes back to the
  // kernel when freed, instead of staying in the heap as resident memory.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  absl::SetProgramUsageMessage(
      "natd: a multi-threaded userspace NAT (NAPT44/NAPT66) on a TUN device.\n"
      "Example: natd --device natd0 --global4 198.19.0.100 --global6 2001:db8:19::100 --preset full-cone");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) Fail(absl::StrCat("unexpected argument '", rest[1], "' (flags are --name=value)"));
  // Kept for SIGHUP, which evaluates the command line again (Reload).
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto checked = SettingsFromFlags();
  if (!checked.ok()) Fail(std::string(checked.status().message()));
  Settings settings = *std::move(checked);
  const EngineConfig& config = settings.engine;  // the live parts change on SIGHUP
  const uint32_t mtu = settings.mtu;
  const uint32_t queues = settings.queues;
  tun::PipelineOptions popt = settings.pipeline;
  const std::optional<Credentials> run_as = settings.run_as;

  // Checked before any device is opened; again as the --user natd will run
  // as, once it is that user, since that user writes the file at exit.
  const std::string state_path = absl::GetFlag(FLAGS_state_file);
  auto check_state_path = [&] {
    if (state_path.empty()) return;
    if (absl::Status s = CheckStateFileWritable(state_path); !s.ok()) {
      Fail(absl::StrCat("--state_file: ", std::string(s.message())));
    }
  };
  check_state_path();

  FILE* log = stderr;
  const std::string log_path = absl::GetFlag(FLAGS_log_file);
  if (log_path != "-") {
    log = std::fopen(log_path.c_str(), "a");
    if (!log) Fail(absl::StrCat("--log_file: cannot open '", log_path, "': ", std::strerror(errno)));
  }

  // Every thread created from here on inherits the blocked signals; only
  // sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  EventLog events(log, log_path, settings.log_invalid_per_second);
  auto engine = Engine::Create(config, &events);
  if (!engine.ok()) Fail(std::string(engine.status().message()));
  tun::TunOptions topt;
  topt.name = absl::GetFlag(FLAGS_device);
  topt.queues = queues;
  topt.mtu = mtu;
  topt.offload = absl::GetFlag(FLAGS_offload);
  topt.io_uring = absl::GetFlag(FLAGS_io_uring);
  topt.busy_poll_us = absl::GetFlag(FLAGS_busy_poll_us);
  auto device = tun::TunDevice::Open(topt);
  if (!device.ok()) Fail(absl::StrCat("--device: ", std::string(device.status().message())));

  if (run_as) {
    if (absl::Status s = DropPrivileges(*run_as); !s.ok()) Fail(absl::StrCat("--user: ", std::string(s.message())));
    check_state_path();
  }
  if (!state_path.empty()) {
    // Read as the user natd runs as: the parser gets no privilege.
    const std::string line =
        LoadStateFile(**engine, state_path, ClockMs(CLOCK_MONOTONIC), ClockMs(CLOCK_REALTIME)) + "\n";
    events.Line(line);
    std::fputs(line.c_str(), stdout);
  }
  // Room for the largest packet the device hands over, rounded up to a cache line.
  popt.buffer_size = ((*device)->max_packet() + 63) / 64 * 64;
  EngineProcessor processor(engine->get(), popt.batch, popt.buffer_size);
  popt.on_status = [](const std::string& text) {
    std::fputs("natd status\n", stdout);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  tun::Pipeline pipeline(popt, (*device)->queues(), &(*device)->queue(0), &processor);
  // The PCP server's requests are tasks for the workers: it may start first.
  EnginePortMapper mapper(engine->get(), &pipeline);
  std::unique_ptr<PcpServer> pcp;
  if (const std::string listen = absl::GetFlag(FLAGS_pcp); !listen.empty()) {
    PcpServerOptions o;
    for (absl::string_view a : absl::StrSplit(listen, ',', absl::SkipEmpty())) o.listen.emplace_back(a);
    o.inside = config.inside;
    if (config.global4) {
      o.globals4 = {*config.global4};
      o.globals4.insert(o.globals4.end(), config.more_global4.begin(), config.more_global4.end());
    }
    if (config.global6) {
      o.globals6 = {*config.global6};
      o.globals6.insert(o.globals6.end(), config.more_global6.begin(), config.more_global6.end());
    }
    o.max_lifetime_s = settings.pcp_max_lifetime_s;
    auto server = PcpServer::Start(o, &mapper, [&events](std::string line) { events.Line(line + "\n"); });
    if (!server.ok()) Fail(absl::StrCat("--pcp: ", std::string(server.status().message())));
    pcp = *std::move(server);
  }
  pipeline.Start();
  events.Line(absl::StrCat("natd: running on ", (*device)->name(), " with ", queues, " queue(s), ", config.shards,
                           " worker(s); offloads ", (*device)->offloads(), "; I/O ", (*device)->io_mode(),
                           topt.busy_poll_us ? absl::StrCat(", busy poll ", topt.busy_poll_us, " us") : "", "; ports ", config.ports.description(), "; tcp ", std::string(config.tcp.name),
                           ", udp ", std::string(config.udp.name), ", icmp ", std::string(config.icmp.name),
                           "; inside (hairpinned) ", config.inside.empty() ? "none" : config.inside.ToString(), "\n"));
  std::fprintf(stdout, "natd: ready\n");
  std::fflush(stdout);

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      pipeline.RequestStatus();
    } else if (sig == SIGHUP) {
      events.Reopen();
      Reload(args, &settings, engine->get(), &pipeline, &events, pcp.get());
    } else if (sig == SIGINT || sig == SIGTERM) {
      break;
    }
  }
  pcp.reset();  // before the workers its requests run on
  pipeline.Stop();
  const tun::PipelineTotals t = pipeline.Totals();
  std::string totals = absl::StrCat("natd totals\n", (*engine)->CountersText(), pipeline.CountersText(),
                                    "tun.read_errors ", (*device)->read_errors(), "\ntun.write_errors ",
                                    (*device)->write_errors(), "\nlog.lost ", events.lost(), "\n");
  // The workers are joined: the tables hold still while they are saved.
  bool state_saved = true;
  if (!state_path.empty()) {
    const std::string line =
        SaveStateFile(**engine, state_path, ClockMs(CLOCK_MONOTONIC), ClockMs(CLOCK_REALTIME), &state_saved) + "\n";
    events.Line(line);
    totals += line;
  }
  for (uint32_t i = 0; i < (*engine)->shards(); ++i) (*engine)->shard(i).Flush();
  events.Stop();
  std::fputs(totals.c_str(), stdout);
  if (t.pool_free_at_stop != t.pool_buffers) {
    std::fprintf(stdout, "natd: BUG: %llu of %llu buffers not returned\n",
                 static_cast<unsigned long long>(t.pool_buffers - t.pool_free_at_stop),
                 static_cast<unsigned long long>(t.pool_buffers));
    return 1;
  }
  std::fprintf(stdout, "natd: stopped cleanly, all %llu buffers returned\n",
               static_cast<unsigned long long>(t.pool_buffers));
  return state_saved ? 0 : 1;
}

}  // namespace
}  // namespace natd

int main(int argc, char** argv) { return natd::Main(argc, argv); }

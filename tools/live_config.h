// Live reconfiguration (natd's SIGHUP): natd's command line is evaluated
// again, each --flagfile read as it is now, checked with the rules of a
// start, and compared with the running values.
//
//   argv as natd got it ─▶ ExpandArgs: every --flagfile=PATH[,PATH...]
//   replaced by PATH's lines (nested flagfiles too), --fromenv/--tryfromenv
//   by the environment; an assignment per flag, in order, a later one wins
//   (as absl::ParseCommandLine reads it)
//   ─▶ PlanReload: each flag defined in natd's source file takes its new
//   value (one no longer given: its default) inside an absl::FlagSaver, the
//   caller's `validate` runs natd's own checks on them, and every flag is
//   restored; a flag whose value differs from its current one is a
//   FlagChange, live or not.
//
// A flagfile holds one flag a line, as absl reads it: `--name=value` (or
// `-name=value`, `--boolflag`, `--noboolflag`), leading blanks ignored,
// blank lines and lines starting with '#' skipped; anything else is an
// error. An unknown flag, a value that does not parse, a failed check, or an
// unreadable file rejects the whole reload: the error names the flag and the
// place, and no flag of the process has changed. Once the caller has
// applied the live changes, CommitLive sets those flags to their new values,
// so the flags always hold the running settings (restart-only ones keep
// their values from the start).
#ifndef NATD_TOOLS_LIVE_CONFIG_H_
#define NATD_TOOLS_LIVE_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nat/config.h"

namespace natd {

// One assignment: a flag (by its registered name) and its text ("true" or
// "false" for --flag / --noflag).
struct FlagArg {
  std::string name;
  std::string value;
  std::string origin;  // "the command line", "PATH:LINE" or "$FLAGS_name"
};

// The command line `args` (argv without argv[0]) with its flagfiles and
// environment read now: every assignment in order. Flags other than
// natd's (absl's flagfile, fromenv, tryfromenv, undefok) are consumed here.
absl::StatusOr<std::vector<FlagArg>> ExpandArgs(const std::vector<std::string>& args);

struct FlagChange {
  std::string name;
  std::string from, to;  // as absl prints the values ("5m", "true", "262144")
  bool live = false;
  friend bool operator==(const FlagChange&, const FlagChange&) = default;
};

// What the flags defined in `file` (natd's: __FILE__ of tools/natd.cc)
// would be after a restart with `args`, against what they are: the changed
// ones, by name, each marked live when in `live`. `validate` runs while the
// flags hold the new values (restored afterwards, whatever it returns); its
// error rejects the reload.
absl::StatusOr<std::vector<FlagChange>> PlanReload(const std::vector<std::string>& args, absl::string_view file,
                                                   const absl::flat_hash_set<std::string>& live,
                                                   const std::function<absl::Status()>& validate);

// Sets the live flags among `changes` to their new values.
void CommitLive(const std::vector<FlagChange>& changes);

// "udp_timeout 5m -> 3m, icmp_prohibited_per_second 100 -> 10": the live
// changes.
std::string DescribeLive(const std::vector<FlagChange>& changes);

// natd's rules for a duration flag: positive, at most 8760h (a year), in ms.
absl::StatusOr<int64_t> DurationMs(absl::string_view flag, absl::Duration d);

// natd's rules for its idle timeouts (each by DurationMs; UDP at least 2m,
// RFC 4787 REQ-5; TCP transitory no longer than established), at start and
// on reload.
absl::StatusOr<Timeouts> TimeoutsFrom(absl::Duration tcp_established, absl::Duration tcp_transitory,
                                      absl::Duration udp, absl::Duration icmp);

}  // namespace natd

#endif  // NATD_TOOLS_LIVE_CONFIG_H_

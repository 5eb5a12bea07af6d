#include "tools/live_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace natd {
namespace {

// Flagfiles may name flagfiles; deeper than this is a loop.
constexpr int kMaxDepth = 16;

absl::Status Bad(absl::string_view origin, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

// absl::ParseCommandLine's reading of a command line, without its side
// effects: flags are looked up, never set.
class Expander {
 public:
  absl::Status Args(const std::vector<std::string>& args, const std::vector<std::string>& origins, bool in_file,
                    int depth) {
    for (size_t i = 0; i < args.size(); ++i) {
      absl::string_view a = args[i];
      const std::string& origin = origins[i];
      if (a == "--") {
        if (in_file) return Bad(origin, "a flagfile can't hold '--' or positional arguments");
        if (i + 1 < args.size()) return Bad(origin, absl::StrCat("unexpected argument '", args[i + 1], "'"));
        break;
      }
      if (a.size() < 2 || a[0] != '-') {
        return Bad(origin, in_file ? absl::StrCat("not a flag (--name=value): '", a, "'")
                                   : absl::StrCat("unexpected argument '", a, "' (flags are --name=value)"));
      }
      a.remove_prefix(a[1] == '-' ? 2 : 1);
      const size_t eq = a.find('=');
      absl::string_view name = a.substr(0, eq);
      absl::string_view value = eq == absl::string_view::npos ? absl::string_view() : a.substr(eq + 1);
      const bool has_value = eq != absl::string_view::npos;
      if (name.empty()) return Bad(origin, absl::StrCat("not a flag: '", args[i], "'"));
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      bool negative = false;
      if (flag == nullptr || flag->IsRetired()) {
        absl::string_view positive = name;
        if (absl::ConsumePrefix(&positive, "no")) {
          flag = absl::FindCommandLineFlag(positive);
          negative = flag != nullptr;
        }
      }
      if (flag == nullptr || flag->IsRetired()) {
        unknown_.push_back({std::string(name), "", origin});
        continue;
      }
      std::string text;
      if (flag->IsOfType<bool>()) {
        if (negative && has_value) return Bad(origin, absl::StrCat("--no", flag->Name(), " takes no value"));
        if (has_value && value.empty()) return Bad(origin, absl::StrCat("--", flag->Name(), "=: missing the value"));
        text = has_value ? std::string(value) : negative ? "false" : "true";
      } else if (negative) {
        return Bad(origin, absl::StrCat("--no", flag->Name(), ": only a boolean flag has a 'no' form"));
      } else if (has_value) {
        text = std::string(value);
      } else if (i + 1 < args.size()) {
        text = args[++i];  // --name value
      } else {
        return Bad(origin, absl::StrCat("--", flag->Name(), ": missing the value"));
      }
      const std::string n(flag->Name());
      if (n == "flagfile") {
        for (absl::string_view path : absl::StrSplit(text, ',', absl::SkipEmpty())) {
          if (absl::Status s = File(std::string(path), origin, depth + 1); !s.ok()) return s;
        }
      } else if (n == "fromenv" || n == "tryfromenv") {
        if (absl::Status s = Env(text, n == "fromenv", origin, depth + 1); !s.ok()) return s;
      } else if (n == "undefok") {
        for (absl::string_view u : absl::StrSplit(text, ',', absl::SkipEmpty())) undefok_.emplace_back(u);
      } else {
        out_.push_back({n, std::move(text), origin});
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<FlagArg>> Finish() {
    for (const FlagArg& u : unknown_) {
      absl::string_view positive = u.name;
      absl::ConsumePrefix(&positive, "no");
      const bool ok = std::find(undefok_.begin(), undefok_.end(), u.name) != undefok_.end() ||
                      std::find(undefok_.begin(), undefok_.end(), positive) != undefok_.end();
      if (!ok) return Bad(u.origin, absl::StrCat("unknown flag --", u.name));
    }
    return std::move(out_);
  }

 private:
  absl::Status File(const std::string& path, const std::string& from, int depth) {
    if (depth > kMaxDepth) return Bad(from, absl::StrCat("flagfiles nested deeper than ", kMaxDepth, " (a loop?)"));
    std::ifstream in(path);
    if (!in) return Bad(from, absl::StrCat("cannot open flagfile '", path, "'"));
    std::vector<std::string> args, origins;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const std::string origin = absl::StrCat(path, ":", n);
      absl::string_view s = absl::StripLeadingAsciiWhitespace(line);
      if (s.empty() || s[0] == '#') continue;
      if (s[0] != '-') return Bad(origin, absl::StrCat("not a flag (--name=value): '", line, "'"));
      args.emplace_back(s);
      origins.push_back(origin);
    }
    if (in.bad()) return Bad(from, absl::StrCat("cannot read flagfile '", path, "'"));
    return Args(args, origins, true, depth);
  }

  absl::Status Env(const std::string& names, bool required, const std::string& from, int depth) {
    for (absl::string_view n : absl::StrSplit(names, ',', absl::SkipEmpty())) {
      if (n == "fromenv" || n == "tryfromenv") {
        return Bad(from, absl::StrCat("--", n, " cannot come from the environment"));
      }
      const std::string var = absl::StrCat("FLAGS_", n);
      const char* v = std::getenv(var.c_str());
      if (v == nullptr) {
        if (required) return Bad(from, absl::StrCat(var, " not found in the environment"));
        continue;
      }
      if (absl::Status s = Args({absl::StrCat("--", n, "=", v)}, {absl::StrCat("$", var)}, true, depth); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  std::vector<FlagArg> out_;
  std::vector<FlagArg> unknown_;
  std::vector<std::string> undefok_;
};

}  // namespace

absl::StatusOr<std::vector<FlagArg>> ExpandArgs(const std::vector<std::string>& args) {
  Expander e;
  const std::vector<std::string> origins(args.size(), "the command line");
  if (absl::Status s = e.Args(args, origins, false, 0); !s.ok()) return s;
  return e.Finish();
}

absl::StatusOr<std::vector<FlagChange>> PlanReload(const std::vector<std::string>& args, absl::string_view file,
                                                   const absl::flat_hash_set<std::string>& live,
                                                   const std::function<absl::Status()>& validate) {
  auto expanded = ExpandArgs(args);
  if (!expanded.ok()) return expanded.status();
  absl::flat_hash_map<absl::string_view, const FlagArg*> last;
  for (const FlagArg& a : *expanded) last[a.name] = &a;
  std::vector<absl::CommandLineFlag*> mine;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (flag->Filename() == file) mine.push_back(flag);
  }
  std::sort(mine.begin(), mine.end(), [](auto* a, auto* b) { return a->Name() < b->Name(); });
  std::vector<std::string> before, after;
  for (const absl::CommandLineFlag* f : mine) before.push_back(f->CurrentValue());
  absl::Status status;
  {
    absl::FlagSaver saver;  // every flag as it was, on leaving this block
    for (absl::CommandLineFlag* f : mine) {
      auto it = last.find(f->Name());
      std::string error;
      if (!f->ParseFrom(it == last.end() ? f->DefaultValue() : it->second->value, &error)) {
        status = Bad(it == last.end() ? absl::StrCat("the default of --", f->Name()) : it->second->origin, error);
        break;
      }
      after.push_back(f->CurrentValue());
    }
    if (status.ok()) status = validate();
  }
  if (!status.ok()) return status;
  std::vector<FlagChange> changes;
  for (size_t i = 0; i < mine.size(); ++i) {
    if (before[i] == after[i]) continue;
    const std::string name(mine[i]->Name());
    changes.push_back({name, before[i], after[i], live.contains(name)});
  }
  return changes;
}

void CommitLive(const std::vector<FlagChange>& changes) {
  for (const FlagChange& c : changes) {
    if (!c.live) continue;
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(c.name);
    std::string error;
    if (f != nullptr) f->ParseFrom(c.to, &error);  // parsed once already in PlanReload
  }
}

std::string DescribeLive(const std::vector<FlagChange>& changes) {
  std::vector<std::string> parts;
  for (const FlagChange& c : changes) {
    if (c.live) parts.push_back(absl::StrCat(c.name, " ", c.from, " -> ", c.to));
  }
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<int64_t> DurationMs(absl::string_view flag, absl::Duration d) {
  if (d < absl::Milliseconds(1)) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be positive"));
  if (d > absl::Hours(8760)) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": at most 8760h"));
  return absl::ToInt64Milliseconds(d);
}

absl::StatusOr<Timeouts> TimeoutsFrom(absl::Duration tcp_established, absl::Duration tcp_transitory,
                                      absl::Duration udp, absl::Duration icmp) {
  Timeouts t;
  for (auto [flag, d, ms] : {std::tuple{"tcp_established_timeout", tcp_established, &t.tcp_established_ms},
                             std::tuple{"tcp_transitory_timeout", tcp_transitory, &t.tcp_transitory_ms},
                             std::tuple{"udp_timeout", udp, &t.udp_ms}, std::tuple{"icmp_timeout", icmp, &t.icmp_ms}}) {
    auto v = DurationMs(flag, d);
    if (!v.ok()) return v.status();
    *ms = *v;
  }
  if (t.udp_ms < kMinUdpTimeoutMs) {
    return absl::InvalidArgumentError("--udp_timeout: must be at least 2m (RFC 4787 REQ-5)");
  }
  if (t.tcp_transitory_ms > t.tcp_established_ms) {
    return absl::InvalidArgumentError("--tcp_transitory_timeout: longer than --tcp_established_timeout");
  }
  return t;
}

}  // namespace natd

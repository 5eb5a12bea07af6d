#include "nat/port_set.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace natd {
namespace {

bool ParseNumber(absl::string_view text, uint32_t* out) {
  text = absl::StripAsciiWhitespace(text);
  if (absl::ConsumePrefix(&text, "0x") || absl::ConsumePrefix(&text, "0X")) {
    if (text.empty() || text.size() > 8) return false;
    uint32_t v = 0;
    for (char c : text) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return false;
      v = v * 16 + d;
    }
    *out = v;
    return true;
  }
  return absl::SimpleAtoi(text, out);
}

absl::Status Bad(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad port set '", spec, "': ", why));
}

}  // namespace

absl::StatusOr<PortSet> PortSet::Range(uint32_t lo, uint32_t hi) {
  if (lo < 1 || hi > 65535 || lo > hi) {
    return absl::InvalidArgumentError(absl::StrCat("bad port range ", lo, "-", hi, ": need 1 <= lo <= hi <= 65535"));
  }
  PortSet s;
  for (uint32_t p = lo; p <= hi; ++p) s.ports_.push_back(static_cast<uint16_t>(p));
  s.description_ = absl::StrCat(lo, "-", hi);
  return s;
}

absl::StatusOr<PortSet> PortSet::MapE(uint32_t a, uint32_t k, uint32_t m, uint32_t psid) {
  if (a + k + m != 16) {
    return absl::InvalidArgumentError(absl::StrCat("MAP-E a+k+m must be 16, got ", a, "+", k, "+", m));
  }
  if (k == 0 || k > 15) return absl::InvalidArgumentError("MAP-E PSID length k must be 1..15");
  if (psid >= (1u << k)) {
    return absl::InvalidArgumentError(absl::StrCat("PSID ", psid, " does not fit in k=", k, " bits"));
  }
  PortSet s;
  const uint32_t a_first = a > 0 ? 1 : 0;  // A >= 1 excludes the system ports
  for (uint32_t A = a_first; A < (1u << a); ++A) {
    for (uint32_t j = 0; j < (1u << m); ++j) {
      uint32_t port = (A << (16 - a)) | (psid << m) | j;
      if (port != 0) s.ports_.push_back(static_cast<uint16_t>(port));
    }
  }
  if (s.ports_.empty()) return absl::InvalidArgumentError("MAP-E parameters give no ports");
  s.description_ = absl::StrCat("map-e a=", a, " k=", k, " m=", m, " psid=", psid, " (", s.ports_.size(), " ports)");
  return s;
}

absl::StatusOr<PortSet> PortSet::Parse(std::string_view spec_std) {
  const absl::string_view spec(spec_std.data(), spec_std.size());
  absl::string_view rest = absl::StripAsciiWhitespace(spec);
  if (rest.empty()) return Bad(spec, "empty");
  auto layout = [&](absl::string_view prefix, uint32_t a, uint32_t k, uint32_t m) -> absl::StatusOr<PortSet> {
    absl::string_view psid_text = rest.substr(prefix.size());
    absl::ConsumePrefix(&psid_text, "psid=");
    uint32_t psid;
    if (!ParseNumber(psid_text, &psid)) return Bad(spec, "PSID is not a number");
    auto s = MapE(a, k, m, psid);
    if (!s.ok()) return Bad(spec, s.status().message());
    s->description_ = absl::StrCat(prefix, psid, " (", s->ports_.size(), " ports)");
    return s;
  };
  if (absl::StartsWith(rest, "v6plus:")) return layout("v6plus:", 4, 8, 4);
  if (absl::StartsWith(rest, "ocn-vc:")) return layout("ocn-vc:", 6, 6, 4);
  if (absl::ConsumePrefix(&rest, "map-e:")) {
    uint32_t vals[4];
    bool seen[4] = {false, false, false, false};
    const char* names[4] = {"a", "k", "m", "psid"};
    for (absl::string_view part : absl::StrSplit(rest, ',')) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
      int idx = -1;
      for (int i = 0; i < 4; ++i) {
        if (absl::StripAsciiWhitespace(kv.first) == names[i]) idx = i;
      }
      if (idx < 0) return Bad(spec, absl::StrCat("unknown key '", kv.first, "' (want a, k, m, psid)"));
      if (!ParseNumber(kv.second, &vals[idx])) return Bad(spec, absl::StrCat("'", kv.first, "' is not a number"));
      seen[idx] = true;
    }
    for (int i = 0; i < 4; ++i) {
      if (!seen[i]) return Bad(spec, absl::StrCat("missing '", names[i], "'"));
    }
    auto s = MapE(vals[0], vals[1], vals[2], vals[3]);
    if (!s.ok()) return Bad(spec, s.status().message());
    return s;
  }
  PortSet out;
  for (absl::string_view part : absl::StrSplit(rest, ',')) {
    std::pair<absl::string_view, absl::string_view> lh = absl::StrSplit(part, absl::MaxSplits('-', 1));
    uint32_t lo, hi;
    if (!ParseNumber(lh.first, &lo)) return Bad(spec, absl::StrCat("'", part, "' is not a port or LO-HI range"));
    hi = lo;
    // "LO-" (a dash with nothing after it) is an error, not the port LO.
    const bool has_dash = part.find('-') != absl::string_view::npos;
    if (has_dash && !ParseNumber(lh.second, &hi)) {
      return Bad(spec, absl::StrCat("'", part, "' is not a port or LO-HI range"));
    }
    auto range = Range(lo, hi);
    if (!range.ok()) return Bad(spec, range.status().message());
    out.ports_.insert(out.ports_.end(), range->ports_.begin(), range->ports_.end());
  }
  std::sort(out.ports_.begin(), out.ports_.end());
  if (std::adjacent_find(out.ports_.begin(), out.ports_.end()) != out.ports_.end()) {
    return Bad(spec, "ranges overlap");
  }
  out.description_ = std::string(rest);
  return out;
}

absl::StatusOr<PortPlan> PortPlan::Make(const PortSet& set, uint32_t shards) {
  if (shards < 1 || shards > kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat("shard count ", shards, " out of range 1..", kMaxShards));
  }
  const auto& ports = set.ports();
  if (ports.size() < shards) {
    return absl::InvalidArgumentError(absl::StrCat("port set ", set.description(), " has ", ports.size(),
                                                   " ports, fewer than the ", shards, " shards"));
  }
  PortPlan plan;
  plan.owner_.assign(65536, kNoShard);
  plan.index_.assign(65536, 0);
  plan.slices_.resize(shards);
  const size_t n = ports.size();
  for (uint32_t s = 0; s < shards; ++s) {
    size_t begin = n * s / shards, end = n * (s + 1) / shards;
    for (size_t i = begin; i < end; ++i) {
      plan.owner_[ports[i]] = static_cast<uint8_t>(s);
      plan.index_[ports[i]] = static_cast<uint16_t>(i - begin);
      plan.slices_[s].push_back(ports[i]);
    }
  }
  return plan;
}

}  // namespace natd

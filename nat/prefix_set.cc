#include "nat/prefix_set.h"

#include <arpa/inet.h>
#include <endian.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace natd {
namespace {

uint64_t Mask64(int bits) { return bits <= 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits); }

}  // namespace

absl::StatusOr<PrefixSet> PrefixSet::Parse(const std::string& text) {
  PrefixSet set;
  for (absl::string_view part : absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    const std::string item(part);
    const size_t slash = item.find('/');
    if (slash == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("'", item, "' is not ADDR/LEN"));
    const std::string addr = item.substr(0, slash);
    int len;
    if (!absl::SimpleAtoi(item.substr(slash + 1), &len) || len < 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", item, "': bad prefix length"));
    }
    Ip4 a4;
    Ip6 a6;
    if (ParseIp4(addr, &a4)) {
      if (len > 32) return absl::InvalidArgumentError(absl::StrCat("'", item, "': IPv4 prefix longer than 32"));
      const uint32_t mask = len == 0 ? 0 : ~0u << (32 - len);
      const uint32_t net = ntohl(a4.raw);
      if (net & ~mask) return absl::InvalidArgumentError(absl::StrCat("'", item, "': host bits set"));
      set.v4_.push_back({net, mask, len});
    } else if (ParseIp6(addr, &a6)) {
      if (len > 128) return absl::InvalidArgumentError(absl::StrCat("'", item, "': IPv6 prefix longer than 128"));
      const uint64_t hi = be64toh(a6.hi), lo = be64toh(a6.lo);
      const uint64_t mhi = Mask64(len), mlo = Mask64(len - 64);
      if ((hi & ~mhi) || (lo & ~mlo)) return absl::InvalidArgumentError(absl::StrCat("'", item, "': host bits set"));
      set.v6_.push_back({hi, lo, mhi, mlo, len});
    } else {
      return absl::InvalidArgumentError(absl::StrCat("'", item, "': not an IPv4 or IPv6 address"));
    }
  }
  return set;
}

PrefixSet PrefixSet::Private() {
  return *Parse("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7");
}

PrefixSet PrefixSet::Without(const Ip4& a) const {
  PrefixSet out = *this;
  const uint32_t h = ntohl(a.raw);
  std::erase_if(out.v4_, [&](const P4& p) { return (h & p.mask) == p.net; });
  return out;
}

PrefixSet PrefixSet::Without(const Ip6& a) const {
  PrefixSet out = *this;
  const uint64_t hi = be64toh(a.hi), lo = be64toh(a.lo);
  std::erase_if(out.v6_, [&](const P6& p) { return (hi & p.mask_hi) == p.net_hi && (lo & p.mask_lo) == p.net_lo; });
  return out;
}

bool PrefixSet::Contains(const Ip4& a) const {
  const uint32_t h = ntohl(a.raw);
  for (const P4& p : v4_) {
    if ((h & p.mask) == p.net) return true;
  }
  return false;
}

bool PrefixSet::Contains(const Ip6& a) const {
  const uint64_t hi = be64toh(a.hi), lo = be64toh(a.lo);
  for (const P6& p : v6_) {
    if ((hi & p.mask_hi) == p.net_hi && (lo & p.mask_lo) == p.net_lo) return true;
  }
  return false;
}

std::string PrefixSet::ToString() const {
  std::string out;
  for (const P4& p : v4_) {
    Ip4 a;
    a.raw = htonl(p.net);
    absl::StrAppend(&out, out.empty() ? "" : ",", natd::ToString(a), "/", p.len);
  }
  for (const P6& p : v6_) {
    Ip6 a;
    a.hi = htobe64(p.net_hi);
    a.lo = htobe64(p.net_lo);
    absl::StrAppend(&out, out.empty() ? "" : ",", natd::ToString(a), "/", p.len);
  }
  return out;
}

}  // namespace natd

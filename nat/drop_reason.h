// The one list of reasons a packet is not forwarded. Each has a counter
// (Counters::drops) and a stable name used in logs and the status dump.
#ifndef NATD_NAT_DROP_REASON_H_
#define NATD_NAT_DROP_REASON_H_

#include <cstdint>
#include <string_view>

namespace natd {

#define NATD_DROP_REASONS(X)                                                          \
  /* parsing: the packet itself is malformed */                                       \
  X(kEmpty, "empty")                                                                  \
  X(kBadIpVersion, "bad-ip-version")                                                  \
  X(kTruncatedIpHeader, "truncated-ip-header")                                        \
  X(kBadIhl, "bad-ihl")                                                               \
  X(kBadTotalLength, "bad-total-length")                                              \
  X(kTruncatedExtHeader, "truncated-ipv6-extension-header")                          \
  X(kTooManyExtHeaders, "too-many-ipv6-extension-headers")                           \
  X(kTruncatedL4Header, "truncated-l4-header")                                        \
  X(kBadTcpDataOffset, "bad-tcp-data-offset")                                         \
  X(kBadUdpLength, "bad-udp-length")                                                  \
  X(kTruncatedQuote, "truncated-icmp-error-quote")                                    \
  X(kBadQuote, "bad-icmp-error-quote")                                                \
  /* defined behaviour for what natd does not translate */                            \
  X(kHairpinFragment, "hairpin-fragment")                                            \
  X(kTinyFragment, "tiny-fragment")                                                   \
  X(kFragmentedIcmpError, "fragmented-icmp-error")                                    \
  X(kFragmentNoFirst, "fragment-without-first")                                       \
  X(kFragmentTimeout, "fragment-timeout")                                             \
  X(kFragmentTableFull, "fragment-table-full")                                        \
  X(kFragmentHoldCount, "fragment-hold-count")                                        \
  X(kFragmentHoldBytes, "fragment-hold-bytes")                                        \
  X(kUnsupportedProtocol, "unsupported-protocol")                                     \
  X(kUnsupportedIcmpType, "unsupported-icmp-type")                                    \
  X(kNoGlobalAddress, "no-global-address-for-family")                                 \
  X(kSourceIsGlobal, "source-is-global-address")                                      \
  X(kLinkLocalOrMulticast, "link-local-or-multicast")                                 \
  X(kHairpinEcho, "hairpin-echo")                                                     \
  /* policy: the tables refuse the packet */                                          \
  X(kNoMapping, "inbound-no-mapping")                                                 \
  X(kFiltered, "inbound-filtered")                                                    \
  X(kTcpNoSession, "tcp-no-session")                                                  \
  X(kIcmpErrorNoSession, "icmp-error-no-session")                                     \
  X(kNoPort, "no-free-port")                                                          \
  X(kTableFull, "table-full")                                                         \
  X(kHostQuota, "host-quota")

enum class DropReason : uint8_t {
  kNone = 0,
#define NATD_DROP_ENUM(name, text) name,
  NATD_DROP_REASONS(NATD_DROP_ENUM)
#undef NATD_DROP_ENUM
      kCount
};

inline constexpr size_t kNumDropReasons = static_cast<size_t>(DropReason::kCount);

constexpr std::string_view DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kNone:
      return "none";
#define NATD_DROP_NAME(name, text) \
  case DropReason::name:           \
    return text;
      NATD_DROP_REASONS(NATD_DROP_NAME)
#undef NATD_DROP_NAME
    case DropReason::kCount:
      break;
  }
  return "?";
}

// Parse failures are "invalid packets" (logged, rate-limited); the rest are
// defined behaviour or policy.
constexpr bool IsMalformed(DropReason r) {
  return r != DropReason::kNone && static_cast<uint8_t>(r) <= static_cast<uint8_t>(DropReason::kBadQuote);
}

}  // namespace natd

#endif  // NATD_NAT_DROP_REASON_H_

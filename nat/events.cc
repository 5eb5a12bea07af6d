#include "nat/events.h"

#include <arpa/inet.h>

namespace natd {

std::string ToString(const IpAddress& a) {
  char buf[INET6_ADDRSTRLEN];
  if (a.family == 4) return inet_ntop(AF_INET, a.bytes, buf, sizeof buf);
  if (a.family == 6) return inet_ntop(AF_INET6, a.bytes, buf, sizeof buf);
  return "?";
}

std::string_view RemoveReasonName(RemoveReason r) {
  switch (r) {
    case RemoveReason::kExpired:
      return "expired";
    case RemoveReason::kFlushed:
      return "flushed";
  }
  return "?";
}

}  // namespace natd

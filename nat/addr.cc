#include "nat/addr.h"

#include <arpa/inet.h>

namespace natd {

std::string ToString(const Ip4& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.raw, buf, sizeof buf);
  return buf;
}

std::string ToString(const Ip6& a) {
  uint8_t bytes[16];
  a.Store(bytes);
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, bytes, buf, sizeof buf);
  return buf;
}

bool ParseIp4(const std::string& text, Ip4* out) {
  return inet_pton(AF_INET, text.c_str(), &out->raw) == 1;
}

bool ParseIp6(const std::string& text, Ip6* out) {
  uint8_t bytes[16];
  if (inet_pton(AF_INET6, text.c_str(), bytes) != 1) return false;
  *out = Ip6::Load(bytes);
  return true;
}

}  // namespace natd

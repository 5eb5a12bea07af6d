#include "nat/behavior.h"

#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace natd {
namespace {

using D = Dependence;
using S = PortStrategy;
using P = PortSharing;

constexpr std::array<Behavior, 9> kPresets = {{
    {"full-cone", D::kEndpointIndependent, D::kEndpointIndependent, S::kPreserve, P::kExclusive},
    {"restricted-cone", D::kEndpointIndependent, D::kAddressDependent, S::kPreserve, P::kExclusive},
    {"port-restricted-cone", D::kEndpointIndependent, D::kAddressPortDependent, S::kPreserve, P::kExclusive},
    {"symmetric", D::kAddressPortDependent, D::kAddressPortDependent, S::kRandom, P::kExclusive},
    {"quasi-restricted-cone", D::kAddressDependent, D::kAddressDependent, S::kReuseLast, P::kPerRemoteAddress},
    {"quasi-port-restricted-cone", D::kAddressPortDependent, D::kAddressPortDependent, S::kReuseLast,
     P::kPerRemoteEndpoint},
    {"quasi-symmetric", D::kAddressPortDependent, D::kAddressPortDependent, S::kRandom, P::kPerRemoteEndpoint},
    {"address-dependent", D::kAddressDependent, D::kAddressDependent, S::kIncrement, P::kExclusive},
    {"address-port-dependent", D::kAddressPortDependent, D::kAddressPortDependent, S::kIncrement, P::kExclusive},
}};

}  // namespace

std::span<const Behavior> AllPresets() { return kPresets; }

absl::StatusOr<Behavior> PresetByName(std::string_view name) {
  for (const Behavior& b : kPresets) {
    if (b.name == name) return b;
  }
  std::vector<std::string> names;
  for (const Behavior& b : kPresets) names.emplace_back(b.name);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown NAT preset '", std::string(name), "'; known: ", absl::StrJoin(names, ", ")));
}

std::string_view MappingName(Dependence d) {
  switch (d) {
    case D::kEndpointIndependent:
      return "EIM";
    case D::kAddressDependent:
      return "ADM";
    case D::kAddressPortDependent:
      return "APDM";
  }
  return "?";
}

std::string_view FilteringName(Dependence d) {
  switch (d) {
    case D::kEndpointIndependent:
      return "EIF";
    case D::kAddressDependent:
      return "ADF";
    case D::kAddressPortDependent:
      return "APDF";
  }
  return "?";
}

}  // namespace natd

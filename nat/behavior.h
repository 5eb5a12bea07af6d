// NAT behaviours in RFC 4787 terms, and the presets users know them by.
//
// A behaviour has four parts:
//   mapping    (§4.1)  which outbound packets share one external port:
//                      endpoint-independent (EIM), address-dependent (ADM) or
//                      address-and-port-dependent (APDM) on the remote end;
//   filtering  (§5)    which remote ends may send inbound to a mapping:
//                      EIF (anyone), ADF (addresses the inside end sent to),
//                      APDF (address and port pairs it sent to);
//   port strategy      how a new mapping picks its external port;
//   port sharing       what must be unique about an external port: the port
//                      itself (exclusive), or the port together with the remote
//                      address / remote endpoint, so that mappings of different
//                      remote ends can share a port as netfilter's masquerade does.
//
//   preset                       mapping filtering strategy     sharing
//   full-cone                    EIM     EIF       preserve     exclusive
//   restricted-cone              EIM     ADF       preserve     exclusive
//   port-restricted-cone         EIM     APDF      preserve     exclusive
//   symmetric                    APDM    APDF      random       exclusive
//   quasi-restricted-cone        ADM     ADF       reuse-last   per remote address
//   quasi-port-restricted-cone   APDM    APDF      reuse-last   per remote endpoint
//   quasi-symmetric              APDM    APDF      random       per remote endpoint
//   address-dependent            ADM     ADF       increment    exclusive
//   address-port-dependent       APDM    APDF      increment    exclusive
//
// "preserve" tries the inside port first; "reuse-last" tries the port last
// given to the same inside endpoint, then the inside port, so a quasi preset
// behaves like EIM in most cases ("NAT type A"); "increment" takes the next
// free port after the last one given to the inside endpoint (predictable,
// "NAT type C"); all fall back to random probes.
#ifndef NATD_NAT_BEHAVIOR_H_
#define NATD_NAT_BEHAVIOR_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace natd {

enum class Dependence : uint8_t { kEndpointIndependent, kAddressDependent, kAddressPortDependent };
enum class PortStrategy : uint8_t { kPreserve, kReuseLast, kIncrement, kRandom };
enum class PortSharing : uint8_t { kExclusive, kPerRemoteAddress, kPerRemoteEndpoint };

struct Behavior {
  std::string_view name;
  Dependence mapping;
  Dependence filtering;
  PortStrategy strategy;
  PortSharing sharing;
};

std::span<const Behavior> AllPresets();
absl::StatusOr<Behavior> PresetByName(std::string_view name);
// "EIM", "ADF", ... for the status dump and logs.
std::string_view MappingName(Dependence d);
std::string_view FilteringName(Dependence d);

}  // namespace natd

#endif  // NATD_NAT_BEHAVIOR_H_

// Writes the seed corpus of the fuzz targets from the golden fixtures
// (nat/testing/fixtures.h) and a few hand-made sequences:
//
//   bazel run //fuzz:make_corpus -- "$PWD/fuzz/corpus"
//
// Every file it writes is named after what it holds (fixture_*, flow_*,
// spec_*); those are deleted and written afresh on each run, so a renamed
// fixture leaves nothing stale behind. Other files (crash-* regressions,
// inputs merged from fuzzing runs) are left alone.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nat/behavior.h"
#include "nat/testing/fixtures.h"
#include "nat/testing/fuzz_checks.h"
#include "nat/testing/packet_builder.h"

namespace natd::testing {
namespace {

namespace fs = std::filesystem;
using In = TranslateInput;

bool Generated(const std::string& name) {
  for (const char* prefix : {"fixture_", "flow_", "spec_"}) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

void RemoveGenerated(const fs::path& dir) {
  if (!fs::exists(dir)) return;
  std::vector<fs::path> doomed;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (Generated(e.path().filename().string())) doomed.push_back(e.path());
  }
  for (const fs::path& p : doomed) fs::remove(p);
}

void Write(const fs::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}

uint8_t PresetIndex(std::string_view name) {
  const auto presets = AllPresets();
  for (size_t i = 0; i < presets.size(); ++i) {
    if (presets[i].name == name) return uint8_t(i);
  }
  throw std::logic_error("no preset " + std::string(name));
}

// One family's traffic through natd: each kind of flow out, its reply in (by
// the port natd chose, whatever the preset), an ICMP error about it, the same
// from another inside host and to another remote, time passing, a flush.
void AddFlows(int family, In* in) {
  const bool v4 = family == 4;
  const std::string inside = v4 ? kInside4 : kInside6, remote = v4 ? kRemote4 : kRemote6;
  const std::string global = v4 ? kGlobal4 : kGlobal6, router = v4 ? kRouter4 : kRouter6;
  const uint8_t icmp = v4 ? 1 : 58;
  const uint8_t unreach = v4 ? 3 : 1, port_code = v4 ? 3 : 4, exceeded = v4 ? 11 : 3;
  const uint8_t fix = In::kFixChecksums;

  PacketSpec udp = MakeSpec(family, inside, remote, 17, 40001, 53);
  udp.payload = {'q', 'u', 'e', 'r', 'y'};
  const Bytes udp_out = Build(udp);
  PacketSpec udp_reply = MakeSpec(family, remote, global, 17, 53, 40001);
  udp_reply.payload = {'a', 'n', 's'};
  in->Add(udp_out, In::kOutbound | fix, 1);
  in->Add(Build(udp_reply), In::kInbound | In::kFromFlow | fix, 1);
  in->Add(BuildIcmpError(family, router, global, unreach, port_code,
                         Build(MakeSpec(family, global, remote, 17, 40001, 53)), v4 ? 28 : 0),
          In::kError | In::kFromFlow | fix, 1);
  // The inside host's own port unreachable about the reply (RFC 5508).
  PacketSpec delivered = MakeSpec(family, remote, inside, 17, 53, 40001);
  delivered.payload = {'a', 'n', 's'};
  in->Add(BuildIcmpError(family, inside, remote, unreach, port_code, Build(delivered)),
          In::kError | In::kOtherInside | In::kFromFlow | fix, 1);
  // The same inside endpoint to another remote (EIM shares the mapping), and
  // a packet from a remote it never sent to (filtering).
  in->Add(udp_out, In::kOutbound | In::kOtherRemote | fix, 2);
  in->Add(Build(udp_reply), In::kInbound | In::kFromFlow | In::kOlderFlow | In::kOtherRemote | fix, 1);
  in->Add(Build(udp_reply), In::kInbound | In::kFromFlow | In::kOtherInside | fix, 1);
  // Another inside host with the same port: a port collision.
  in->Add(udp_out, In::kOutbound | In::kOtherInside | fix, 1);
  in->Add(Build(udp_reply), In::kInbound | In::kFromFlow | fix, 1);

  PacketSpec syn = MakeSpec(family, inside, remote, 6, 40000, 443);
  syn.tcp_flags = 0x02;
  PacketSpec synack = MakeSpec(family, remote, global, 6, 443, 40000);
  synack.tcp_flags = 0x12;
  PacketSpec ack = syn;
  ack.tcp_flags = 0x10;
  ack.payload = Bytes(37, 0x5a);
  PacketSpec fin = ack;
  fin.tcp_flags = 0x11;
  fin.payload.clear();
  in->Add(Build(syn), In::kOutbound | fix, 1);
  in->Add(Build(synack), In::kInbound | In::kFromFlow | fix, 1);
  in->Add(Build(ack), In::kOutbound | fix, 1);
  in->Add(BuildIcmpError(family, router, global, exceeded, 0, Build(MakeSpec(family, global, remote, 6, 40000, 443))),
          In::kError | In::kFromFlow | fix, 0x45);  // 5 s: past the short transitory timeout
  in->Add(Build(fin), In::kOutbound | In::kOffload | fix, 1);

  PacketSpec echo = MakeSpec(family, inside, remote, icmp, 0x4321, 0);
  echo.icmp_type = v4 ? 8 : 128;
  PacketSpec echo_reply = MakeSpec(family, remote, global, icmp, 0x4321, 0);
  echo_reply.icmp_type = v4 ? 0 : 129;
  in->Add(Build(echo), In::kOutbound | fix, 1);
  in->Add(Build(echo_reply), In::kInbound | In::kFromFlow | fix, 1);
  // The inside host's error about the reply it was given.
  PacketSpec echo_delivered = MakeSpec(family, remote, inside, icmp, 0x4321, 0);
  echo_delivered.icmp_type = v4 ? 0 : 129;
  in->Add(BuildIcmpError(family, inside, remote, unreach, 0, Build(echo_delivered)),
          In::kError | In::kOtherInside | In::kFromFlow | fix, 1);
  // A status request while TCP, UDP and echo sessions are live.
  in->Add(Build(MakeSpec(4, kInside4, "192.0.2.2", 17, 5000, 5000)), In::kAsGiven, 1);
  in->Add(BuildIcmpError(family, router, global, exceeded, 0, Build(MakeSpec(family, global, remote, icmp, 0x4321, 0))),
          In::kError | In::kFromFlow | fix, 0x81);                      // 64 s: the echo session has expired
  in->Add(Build(udp_reply), In::kInbound | In::kFromFlow | fix, 0xc1);  // 4.6 min: UDP expired
  in->Add(udp_out, In::kOutbound | fix, In::kFlush);
}

void WriteTranslate(const fs::path& root) {
  const fs::path dir = root / "translate_fuzz";
  const uint8_t full_cone = PresetIndex("full-cone");
  for (const Fixture& f : AllFixtures()) {
    In in(full_cone, 1, kFixtureOptions);
    for (const Bytes& s : f.setup) in.Add(s);
    in.Add(f.input);
    Write(dir, "fixture_" + f.name, in.bytes);
  }
  // Every preset, over a small port set (v6plus, 240 ports) and small tables
  // with short timeouts, one and three shards, both families.
  for (size_t p = 0; p < AllPresets().size(); ++p) {
    for (uint8_t shards : {1, 3}) {
      // One shard: a session per inside host and table, answers to the
      // refusals with room to spare; three: four sessions per host, one
      // answer a second, 600 bytes of room.
      In in(uint8_t(p), shards, 0x02 | 0x04 | 0x20, shards == 1 ? 0x31 : 0x2a);
      AddFlows(4, &in);
      AddFlows(6, &in);
      Write(dir, "flow_" + std::string(AllPresets()[p].name) + "_" + std::to_string(shards), in.bytes);
    }
  }
  // Exhaustion: 8 ports, 4 sessions, one shard; many inside ports.
  In in(full_cone, 1, 0x00, 0x30);  // refusals answered
  for (uint16_t port = 1020; port < 1040; ++port) {
    PacketSpec s = MakeSpec(4, kInside4, kRemote4, 17, port, 53);
    in.Add(Build(s), In::kOutbound | In::kFixChecksums, 1);
  }
  Write(dir, "flow_exhaustion", in.bytes);
  // Random ports with a single probe over 8 ports: the exclusive scan after
  // the probe hits a taken port.
  In scan(PresetIndex("symmetric"), 1, 0x0c);
  scan.bytes[0] += 27;  // port probes: 1
  for (uint16_t port = 2000; port < 2010; ++port) {
    scan.Add(Build(MakeSpec(4, kInside4, kRemote4, 17, port, 53)), In::kOutbound | In::kFixChecksums, 1);
  }
  Write(dir, "flow_random_port_scan", scan.bytes);
}

void WritePacketView(const fs::path& root) {
  const fs::path dir = root / "packet_view_fuzz";
  for (const Fixture& f : AllFixtures()) {
    Write(dir, "fixture_" + f.name, f.input);
    if (f.expected != f.input) Write(dir, "fixture_" + f.name + "_out", f.expected);
  }
}

void WritePortSet(const fs::path& root) {
  const fs::path dir = root / "port_set_fuzz";
  const char* const specs[][2] = {
      {"range", "1024-65535"},
      {"ranges", "20000-29999,40000-49999"},
      {"single", "5000"},
      {"hex", "0x400-0xffff"},
      {"spaces", " 1024 - 2047 , 3000 "},
      {"v6plus", "v6plus:0x12"},
      {"v6plus_psid", "v6plus:psid=255"},
      {"ocn_vc", "ocn-vc:63"},
      {"map_e", "map-e:a=4,k=8,m=4,psid=0x34"},
      {"map_e_a0", "map-e:a=0,k=12,m=4,psid=1"},
      {"bad_overlap", "1000-2000,1500-2500"},
      {"bad_dash", "1024-"},
      {"bad_k", "map-e:a=4,k=9,m=4,psid=1"},
  };
  for (const auto& s : specs) Write(dir, std::string("spec_") + s[0], Bytes(s[1], s[1] + std::strlen(s[1])));
}

}  // namespace
}  // namespace natd::testing

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus CORPUS_DIR (e.g. \"$PWD/fuzz/corpus\")\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];
  for (const char* t : {"packet_view_fuzz", "translate_fuzz", "port_set_fuzz"}) {
    natd::testing::RemoveGenerated(root / t);
  }
  natd::testing::WritePacketView(root);
  natd::testing::WriteTranslate(root);
  natd::testing::WritePortSet(root);
  std::printf("seed corpus written under %s\n", argv[1]);
  return 0;
}

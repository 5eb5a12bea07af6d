#include "nat/verify.h"

#include "nat/checksum.h"

namespace natd {

bool ChecksumsValid(const uint8_t* d, const PacketView& v) {
  uint64_t pseudo = 0;
  if (v.family == 4) {
    const uint32_t ihl = (d[0] & 0x0f) * 4u;
    if (Fold(SumRaw(d, ihl)) != 0xffff) return false;
    pseudo = SumRaw(d + 12, 8);
  } else {
    pseudo = SumRaw(d + 8, 32);
  }
  const uint8_t* l4 = d + v.l4;
  // UDP covers its own length (bytes after it are not part of the datagram).
  const uint32_t l4_len = v.kind == L4Kind::kUdp ? LoadBe16(l4 + 4) : v.len - v.l4;
  uint8_t tail[4] = {0, 0, 0, v.proto};
  const uint16_t len_raw = ToRaw16(static_cast<uint16_t>(l4_len));
  if (v.family == 6) {
    uint8_t len32[4] = {0, 0, uint8_t(l4_len >> 8), uint8_t(l4_len)};
    pseudo = SumRaw(len32, 4, pseudo);
    pseudo = SumRaw(tail, 4, pseudo);
  } else {
    pseudo += len_raw;
    pseudo = SumRaw(tail + 2, 2, pseudo);
  }
  switch (v.kind) {
    case L4Kind::kTcp:
      return Fold(SumRaw(l4, l4_len, pseudo)) == 0xffff;
    case L4Kind::kUdp:
      if (v.family == 4 && LoadRaw16(l4 + 6) == 0) return true;
      return Fold(SumRaw(l4, l4_len, pseudo)) == 0xffff;
    case L4Kind::kEcho:
    case L4Kind::kError:
      return Fold(SumRaw(l4, l4_len, v.family == 6 ? pseudo : 0)) == 0xffff;
    case L4Kind::kNone:
      break;
  }
  return true;
}

}  // namespace natd

#!/usr/bin/env bash
# Runs the engine self-check (what `bash tools/run.sh` shows) and requires it
# to pass and to have translated the golden packets and every preset.
set -euo pipefail
out=$("./$1") || { echo "$out"; echo "self-check exited non-zero"; exit 1; }
echo "$out"
grep -q "^self-check passed$" <<<"$out"
grep -qE "^golden packets: ([0-9]+) of \1 translated exactly as expected$" <<<"$out"
for preset in full-cone restricted-cone port-restricted-cone symmetric quasi-restricted-cone \
  quasi-port-restricted-cone quasi-symmetric address-dependent address-port-dependent; do
  grep -q "^$preset " <<<"$out" || { echo "preset $preset missing from the self-check"; exit 1; }
done
grep -q "^status (a packet to 192.0.2.2 asked for it):" <<<"$out"

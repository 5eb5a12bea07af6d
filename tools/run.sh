#!/usr/bin/env bash
# Installs what is missing, builds natd, and runs its main job: the demo in
# the namespace lab (ping, HTTP download and UDP through natd over IPv4 and
# IPv6, then natd's status). `tools/run.sh selfcheck` runs the engine's
# self-check instead; other arguments are passed to natd as flags.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
if [ "${1:-}" = selfcheck ]; then
  exec bazel run //tools:selfcheck
fi
bazel build //tools:natd
exec bash tools/demo.sh "$(bazel info bazel-bin)/tools/natd" "$@"

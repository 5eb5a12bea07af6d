#!/usr/bin/env bash
# Installs what is missing, then runs natd's main job. Until the dataplane
# lands this is the engine's self-check: every golden packet through the
# translation engine, verified byte for byte, then a status dump.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec bazel run //tools:selfcheck -- "$@"

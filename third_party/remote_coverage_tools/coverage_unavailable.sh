#!/bin/sh
echo "coverage is not available through Bazel here; use gcovr outside Bazel" >&2
exit 1

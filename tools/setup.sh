#!/usr/bin/env bash
# Installs what natd needs to build and test on Debian 12, and only what is
# missing (idempotent; no network use when everything is present). Run as root.
set -euo pipefail

PACKAGES=(
  # build: Bazel 4.2.3 and the libraries natd links (see ../shared/BAZEL_OFFLINE.md)
  bazel-bootstrap bazel-rules-java g++ pkg-config
  libabsl-dev libconcurrentqueue-dev libgtest-dev libbenchmark-dev liburing-dev
  # clang builds: fuzz targets (libFuzzer, ASan, UBSan) and --config=tsan;
  # lld links them, llvm-14 has the symbolizer for sanitizer reports
  clang-14 libclang-rt-14-dev lld-14 llvm-14
  # the namespace lab: end-to-end tests and the demo (../shared/NETLAB.md)
  iproute2 iputils-ping traceroute curl socat iperf3 tcpdump python3 python3-scapy procps
  # a port-mapping client no one here wrote (NAT-PMP, libnatpmp): the PCP e2e test
  natpmpc
  # the lab benchmark: the kernel's NAT as baseline, a packet generator that
  # outruns the kernel's path (trafgen), and the plot
  nftables netsniff-ng python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

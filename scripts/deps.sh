#!/usr/bin/env bash
# Installs the system packages relearn builds and tests with (Debian/Ubuntu), only those
# missing: the C/C++ toolchain for the bundled librdkafka build (gcc, g++, make; OpenSSL headers
# and pkg-config for its TLS support), python3-venv
# for the libtorch venv, Debian's RocksDB (linked dynamically, see .cargo/config.toml), libclang for the
# RocksDB bindings, kcat for broker readiness checks, prometheus (with promtool) for the
# observability tests. Java 17+ and Maven are needed for the
# test broker (scripts/kafka.sh); Rust comes from rustup.
set -euo pipefail

packages=(gcc g++ make pkg-config libssl-dev python3-venv librocksdb-dev libclang1-14 libclang-common-14-dev zlib1g-dev kcat prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in cargo java mvn; do
  command -v "$tool" >/dev/null || { echo "deps.sh: $tool is required but not installed" >&2; exit 1; }
done

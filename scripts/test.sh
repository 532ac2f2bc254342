#!/usr/bin/env bash
# The test command: installs what the build needs, resolves the Kafka broker from Maven
# Central, runs every test (the Kafka tests start a real broker on 127.0.0.1:19092 through
# scripts/kafka.sh), and stops that broker at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
scripts/kafka.sh install
export RELEARN_KAFKA_PORT=19092
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; RELEARN_KAFKA_PORT=19192 scripts/kafka.sh stop >/dev/null 2>&1 || true; RELEARN_KAFKA_PORT=19292 scripts/kafka.sh stop >/dev/null 2>&1 || true; RELEARN_KAFKA_PORT=19492 scripts/kafka.sh stop >/dev/null 2>&1 || true; RELEARN_KAFKA_PORT=19692 scripts/kafka.sh stop >/dev/null 2>&1 || true' EXIT
cargo test --all-targets "$@"

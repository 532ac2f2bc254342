#!/usr/bin/env bash
# Soak: the release daemon for an hour (by default) through a real broker at a fixed rate,
# with retrains and predict traffic beside it, sampling RSS, open file descriptors, the store's
# size, consumer lag, ingest rate and predict p50/p99 every 10 s (benches/soak.py). Writes
# soak.csv, soak.md (a row a minute and the checks) and soak.png (relearn-bench plot) to OUT.
# Not part of CI.
#
#   scripts/soak.sh [OUT] [MINUTES]      default: soak-out, 60
#
# Environment: SOAK_RATE (records/s, default 2000), SOAK_PREDICT_RATE (requests/s, default
# 1000), SOAK_EVERY_LABELED (a retrain every this many labeled records, default 100000),
# RELEARN_KAFKA_PORT (default 19592, a broker of its own, stopped at the end), SOAK_BIN (a
# relearn binary to soak instead of the one built here, e.g. an older build for an A/B).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/daemon.sh
out=${1:-soak-out}
minutes=${2:-60}
export RELEARN_KAFKA_PORT=${RELEARN_KAFKA_PORT:-19592}
brokers=127.0.0.1:$RELEARN_KAFKA_PORT
target=${CARGO_TARGET_DIR:-$HOME/.cache/relearn/target}
work=$(mktemp -d)
pid=""
# The daemon is stopped (and waited for: its last batch, its consumer leaving the group)
# before the broker, which it would otherwise wait for until shutdown.grace_seconds.
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

scripts/deps.sh
cargo build --release --locked --bin relearn --bin relearn-bench
scripts/kafka.sh install
scripts/kafka.sh start >/dev/null
mkdir -p "$out"

topic="soak-$$"
port=$(free_port)
features=$(python3 -c 'print(",".join(f"\"f{i}\"" for i in range(54)))')
cat > "$work/soak.toml" <<TOML
[kafka]
brokers = "$brokers"
topics = ["$topic"]
group_id = "soak-$$"
dead_letter_topic = "soak-dead-$$"
[schema]
features = [$features]
label = "class"
classes = ["1", "2", "3", "4", "5", "6", "7"]
[store]
path = "$work/store"
[http]
listen = "127.0.0.1:$port"
[triggers]
every_labeled = ${SOAK_EVERY_LABELED:-100000}
TOML
# The topic exists before the daemon subscribes (one record, auto-created).
echo "$(python3 -c 'print(",".join(["0"]*54))'),1" | kcat -b "$brokers" -q -P -t "$topic"
RELEARN_LOG=warn "${SOAK_BIN:-$target/release/relearn}" run --config "$work/soak.toml" > "$out/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
python3 benches/soak.py --pid "$pid" --brokers "$brokers" --topic "$topic" \
  --http "127.0.0.1:$port" --store "$work/store" --out "$out" --minutes "$minutes" \
  --rate "${SOAK_RATE:-2000}" --predict-rate "${SOAK_PREDICT_RATE:-1000}"
"$target/release/relearn-bench" plot "$out/soak.csv"

#!/usr/bin/env bash
# Ingest throughput through a real broker: produces N Covertype-shaped CSV records (54
# numeric features and a class in 1..7, a fixed seed; 3 partitions) into a fresh topic on the
# dev broker (scripts/kafka.sh), runs the release daemon on it with the default config plus
# the schema, and prints records/s from the first to the last record ingested (from
# /metrics), once per arm: learning on (the defaults), and learning off (no challenger, no
# triggered retrain: every record is still scored by the first model).
#
#   scripts/kafka-load.sh [N]          N records (default 300000)
#
# Environment: RELEARN_KAFKA_PORT (default 19392, a broker of its own, stopped at the end),
# RELEARN_BIN (default the release binary in the cargo target dir, built if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/daemon.sh
n=${1:-300000}
export RELEARN_KAFKA_PORT=${RELEARN_KAFKA_PORT:-19392}
brokers=127.0.0.1:$RELEARN_KAFKA_PORT
target=${CARGO_TARGET_DIR:-$HOME/.cache/relearn/target}
bin=${RELEARN_BIN:-$target/release/relearn}
work=$(mktemp -d)
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

scripts/deps.sh
[ -x "$bin" ] || cargo build --release --locked --bin relearn
scripts/kafka.sh install
scripts/kafka.sh start >/dev/null

python3 - "$n" > "$work/records.csv" <<'EOF'
import random, sys
n = int(sys.argv[1])
rng = random.Random(7)
out = sys.stdout
for i in range(n):
    # 10 numeric columns on Covertype's scales, 4 + 40 one-hot columns, a class that depends
    # on elevation and a drift halfway.
    elev = rng.gauss(2950 if i < n // 2 else 3050, 280)
    nums = [elev, rng.uniform(0, 360), rng.uniform(0, 60), rng.uniform(0, 1400),
            rng.gauss(45, 60), rng.uniform(0, 7000), rng.uniform(0, 255), rng.uniform(0, 255),
            rng.uniform(0, 255), rng.uniform(0, 7000)]
    wild = [0] * 4; wild[rng.randrange(4)] = 1
    soil = [0] * 40; soil[rng.randrange(40)] = 1
    cls = min(7, max(1, int((elev - 2300) / 180) + rng.choice((-1, 0, 0, 1))))
    out.write(",".join(f"{v:.1f}" for v in nums) + "," + ",".join(map(str, wild + soil)) + f",{cls}\n")
EOF

features=$(python3 -c 'print(",".join(f"\"f{i}\"" for i in range(54)))')
run_arm() {
  local arm=$1 extra=$2 topic="load-$1-$$" port
  kcat -b "$brokers" -q -P -t "$topic" -l "$work/records.csv" -X topic.partitioner=random \
    -X queue.buffering.max.messages=1000000 2>/dev/null || true
  port=$(free_port)
  cat > "$work/$arm.toml" <<EOF
[kafka]
brokers = "$brokers"
topics = ["$topic"]
group_id = "load-$arm-$$"
dead_letter_topic = "load-dead-$$"
[schema]
features = [$features]
label = "class"
classes = ["1", "2", "3", "4", "5", "6", "7"]
[store]
path = "$work/store-$arm"
[http]
listen = "127.0.0.1:$port"
$extra
EOF
  RELEARN_LOG=warn "$bin" run --config "$work/$arm.toml" > "$work/$arm.log" 2>&1 &
  local pid=$! measured count rate
  measured=$(wait_ingested "$pid" "$port" "$n" "$work/$arm.log") || exit 1
  read -r count rate <<< "$measured"
  local skipped
  skipped=$(curl -s "127.0.0.1:$port/metrics" | awk '/^relearn_learn_challenger_skipped_records_total /{print $2}')
  kill -TERM "$pid"; wait "$pid" || true
  echo "| $arm | $count | $rate | ${skipped:-0} |"
}

echo "| arm | records | records/s | challenger skipped |"
echo "|---|---|---|---|"
run_arm learning-on ""
run_arm learning-off $'[challenger]\nenabled = false\n[triggers]\ndrift_detectors = []\naccuracy_drop = 0.0'

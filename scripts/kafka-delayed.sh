#!/usr/bin/env bash
# Delayed labels through a real broker, at scale: NYC flights 2013 as a delayed-label stream
# (benches/flights_delayed.py: a feature record at each scheduled departure, a label record
# at each scheduled arrival, keyed by flight) produced to one topic with the flight as the
# Kafka key, consumed by the release daemon with the join on (`[labels] enabled`) and
# `kafka.predictions_topic` set. Prints records/s from the first to the last record ingested
# (from /metrics), then recomputes the realised accuracy offline from the predictions topic
# (deduplicated on the source position) and the labels in the file, and compares it with the
# daemon's stored totals: they must be equal, record for record.
#
#   scripts/kafka-delayed.sh [FLIGHTS_CSV_GZ]
#
# Environment: RELEARN_KAFKA_PORT (default 19792, a broker of its own, stopped at the end),
# RELEARN_BIN (default the release binary in the cargo target dir, built if missing),
# RELEARN_DATASETS (default ../shared/datasets), RELEARN_EXTRA_CONFIG (TOML appended to the
# daemon's config, e.g. to compare with `[challenger] enabled = false`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/daemon.sh
data=${RELEARN_DATASETS:-../shared/datasets}
src=${1:-$data/streams/nycflights13_flights/nycflights13_flights.csv.gz}
export RELEARN_KAFKA_PORT=${RELEARN_KAFKA_PORT:-19792}
brokers=127.0.0.1:$RELEARN_KAFKA_PORT
target=${CARGO_TARGET_DIR:-$HOME/.cache/relearn/target}
bin=${RELEARN_BIN:-$target/release/relearn}
work=$(mktemp -d)
trap 'scripts/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

[ -f "$src" ] || { echo "kafka-delayed.sh: no flights file at $src" >&2; exit 1; }
scripts/deps.sh
[ -x "$bin" ] || cargo build --release --locked --bin relearn
scripts/kafka.sh install
scripts/kafka.sh start >/dev/null

python3 benches/flights_delayed.py "$src" "$work/flights" >&2
# kcat -K: "key<TAB>value" lines; the key (the flight) decides the partition.
python3 - "$work/flights/delayed.jsonl" > "$work/keyed.txt" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    for line in f:
        print(json.loads(line)["id"] + "\t" + line.rstrip("\n"))
EOF
n=$(wc -l < "$work/keyed.txt")
topic="flights-$$"
kcat -b "$brokers" -q -P -t "$topic" -K $'\t' -l "$work/keyed.txt" \
  -X queue.buffering.max.messages=1000000
port=$(free_port)
cat > "$work/relearn.toml" <<EOF
[kafka]
brokers = "$brokers"
topics = ["$topic"]
group_id = "flights-$$"
dead_letter_topic = "flights-dead-$$"
predictions_topic = "flights-predictions-$$"
$(sed -n '/^\[schema\]/,/^\[file\]/{/^\[file\]/!p}' "$work/flights/delayed.toml")
[store]
path = "$work/store"
[http]
listen = "127.0.0.1:$port"
${RELEARN_EXTRA_CONFIG:-}
EOF
RELEARN_LOG=warn "$bin" run --config "$work/relearn.toml" > "$work/daemon.log" 2>&1 &
pid=$!
measured=$(wait_ingested "$pid" "$port" "$n" "$work/daemon.log") || exit 1
read -r count rate <<< "$measured"
kill -TERM "$pid"
wait "$pid" || { echo "kafka-delayed.sh: the daemon exited non-zero; log:" >&2; cat "$work/daemon.log" >&2; exit 1; }
"$bin" inspect --store "$work/store" > "$work/inspect.json"
kcat -b "$brokers" -q -C -t "flights-predictions-$$" -e -o beginning -f '%s\n' > "$work/predictions.jsonl"
python3 - "$work/flights/delayed.jsonl" "$work/predictions.jsonl" "$work/inspect.json" "$n" "$rate" <<'EOF'
import json, sys
stream, predictions, inspect, n, rate = sys.argv[1:6]
labels = {}
for line in open(stream):
    r = json.loads(line)
    if "late" in r and r["id"] not in labels:
        labels[r["id"]] = r["late"]
served, copies = {}, 0
for line in open(predictions):
    p = json.loads(line)
    copies += 1
    # A batch written again after a crash or a rebalance is produced again: the source
    # position deduplicates.
    served.setdefault((p["topic"], p["partition"], p["offset"]), p)
by_key = {p["key"]: p for p in served.values() if p.get("key") in labels}
right = sum(1 for k, p in by_key.items() if p["class"] == labels[k])
wrong = len(by_key) - right
report = json.load(open(inspect))
t = report["loop_totals"]
got = (t.get("predictions/correct", 0), t.get("predictions/incorrect", 0))
print("| records | records/s | predictions produced (unique) | labeled flights | scored: offline right / wrong | daemon right / wrong | unscored (daemon) | equal |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {int(n):,} | {rate} | {copies:,} ({len(served):,}) | {len(labels):,} | {right:,} / {wrong:,} | {got[0]:,} / {got[1]:,} | {t.get('predictions/unscored', 0):,} | {'yes' if got == (right, wrong) else 'NO'} |")
print(f"realised accuracy: offline {right / max(1, right + wrong):.4f}, daemon {got[0] / max(1, sum(got)):.4f}")
sys.exit(0 if got == (right, wrong) else 1)
EOF

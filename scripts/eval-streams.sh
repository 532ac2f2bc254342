#!/usr/bin/env bash
# Runs `relearn eval` on every development stream listed in benches/results/peers/streams.tsv
# (datasets under ${RELEARN_DATASETS:-../shared/datasets}) and prints one line per stream.
# Extra arguments go to `relearn eval` (e.g. --strategies default,full,none); RELEARN__*
# variables in the environment change the config as in the daemon. String columns listed in
# the file's `categorical` column are passed as --categorical, its `time` column as --time
# (RELEARN_EVAL_NUMERIC_ONLY=1: numeric columns only).
#   scripts/eval-streams.sh [--bin PATH] [--only a,b] [-- eval args...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
data=${RELEARN_DATASETS:-../shared/datasets}
bin=${RELEARN_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/relearn/target}/release/relearn}
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
out=${RELEARN_EVAL_OUT:-eval-out/streams}
tail -n +2 benches/results/peers/streams.tsv | while IFS=$'\t' read -r name file label features labels categorical time; do
  if [ -n "$only" ] && ! echo ",$only," | grep -q ",$name,"; then continue; fi
  cat_args=()
  [ -n "${categorical:-}" ] && [ -z "${RELEARN_EVAL_NUMERIC_ONLY:-}" ] && cat_args=(--categorical "$categorical")
  [ -n "${time:-}" ] && [ -z "${RELEARN_EVAL_NUMERIC_ONLY:-}" ] && cat_args+=(--time "$time")
  # "-" in the labels column: a numeric target (regression, inferred by relearn eval).
  cls_args=()
  [ "$labels" != "-" ] && cls_args=(--classes "$labels")
  "$bin" eval "$data/$file" --label "$label" --features "$features" "${cls_args[@]}" \
    "${cat_args[@]}" --out "$out/$name" "$@" 2>/dev/null | grep '^| [a-z]' | grep -v '^| strategy' | sed "s/^/| $name /"
done

#!/usr/bin/env bash
# Runs the property tests of tests/fuzz.rs for longer than `cargo test` does: each test with
# PROPTEST_CASES cases (default 200000), under a per-test time limit (FUZZ_SECONDS, default
# 600). A failure prints the minimal failing input; keep it as a regression case in
# tests/fuzz.rs (or the unit tests of the module it broke) once fixed. Not in CI.
#   scripts/fuzz.sh [test-name-filter]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/relearn/target}"
export PROPTEST_CASES="${PROPTEST_CASES:-200000}"
seconds="${FUZZ_SECONDS:-600}"
cargo test --locked --test fuzz --no-run
for t in decoding_arbitrary_bytes_never_panics decoding_csv_like_lines_never_panics \
  decoding_arbitrary_json_objects_never_panics config_with_arbitrary_env_overrides_never_panics; do
  if [ -n "${1:-}" ] && [[ "$t" != *"$1"* ]]; then continue; fi
  echo "fuzz: $t ($PROPTEST_CASES cases, at most $seconds s)"
  rc=0
  timeout "$seconds" cargo test --locked --test fuzz "$t" -- --exact || rc=$?
  case $rc in
    0) echo "fuzz: $t passed" ;;
    124) echo "fuzz: $t ran $seconds s without a failure" ;;
    *) echo "fuzz: $t FAILED"; exit "$rc" ;;
  esac
done

#!/usr/bin/env bash
# The learning test suite on the libtorch backend (feature `tch`): installs torch 2.9.0 from
# PyPI into a venv (scripts/libtorch.sh), builds with LIBTORCH_USE_PYTORCH=1 and runs the
# learning unit tests, tests/learning.rs and tests/retrain.rs with RELEARN_TEST_BACKEND=tch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
scripts/libtorch.sh install
eval "$(scripts/libtorch.sh env)"
export RELEARN_TEST_BACKEND=tch
cargo test -p relearn --features tch --lib "$@" -- learn::
cargo test -p relearn --features tch --test learning --test retrain "$@"

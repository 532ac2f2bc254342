#!/usr/bin/env bash
# The embedded demo: installs what the build needs, then runs the daemon on the Elec2 stream
# embedded in the binary, with a temporary store and /metrics on 127.0.0.1:8080.
# Extra arguments go to `relearn run` (e.g. --config config/relearn.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
exec cargo run --quiet --bin relearn -- run "$@"

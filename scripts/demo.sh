#!/usr/bin/env bash
# The embedded demo: installs what the build needs, then runs the daemon on the Elec2 stream
# embedded in the binary, with a temporary store and /metrics on 127.0.0.1:8080.
# It uses the Elec2 profile config/elec2.toml unless arguments are given; they go to
# `relearn run` (e.g. --config config/relearn.toml for the plain defaults).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
if [ "$#" -eq 0 ]; then
  set -- --config config/elec2.toml
fi
exec cargo run --quiet --bin relearn -- run "$@"

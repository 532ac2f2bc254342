#!/usr/bin/env bash
# Installs libtorch for the `tch` feature (burn-tch): PyPI's torch 2.9.0, the version
# burn-tch 0.22.1's tch expects, in a virtualenv under ~/.cache/relearn/torch-venv.
#
#   scripts/libtorch.sh install     create the venv and install torch (idempotent)
#   eval "$(scripts/libtorch.sh env)"   export what the build and the tests need
#
# The build reads LIBTORCH_USE_PYTORCH=1 with the venv's python first on PATH; the binaries
# need LD_LIBRARY_PATH to reach torch/lib.
set -euo pipefail

venv=${RELEARN_TORCH_VENV:-$HOME/.cache/relearn/torch-venv}
version=2.9.0

install() {
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
    return
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==$version"
}

env_lines() {
  local lib
  lib=$("$venv/bin/python" -W ignore -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null)
  echo "export PATH=\"$venv/bin:\$PATH\""
  echo "export LIBTORCH_USE_PYTORCH=1"
  echo "export LD_LIBRARY_PATH=\"$lib:\${LD_LIBRARY_PATH:-}\""
}

case "${1:-}" in
  install) install ;;
  env) env_lines ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac

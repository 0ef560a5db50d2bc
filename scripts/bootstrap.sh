#!/usr/bin/env bash
# Create or update .venv exactly as uv.lock says (every package hash-checked).
# Usage: scripts/bootstrap.sh [--extra dev] ...   Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never   # use this machine's Python >= 3.11, never download one
UV_VERSION=0.13.9

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "propensity-sandbox needs Python >= 3.11 as python3" >&2
  exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv
fi
uv=".tools/uv/bin/uv"
if [ ! -x "$uv" ] || [ "$("$uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  rm -rf .tools/uv
  python3 -m venv .tools/uv
  .tools/uv/bin/pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
# --inexact: the quick start must not strip the dev tools that the test command installed.
# --compile-bytecode: without it every fresh process compiles litellm again (about 3 s of CPU
# per process: each shard, Ray worker and CLI call paid it).
"$uv" sync --frozen --inexact --compile-bytecode --python python3 "$@"

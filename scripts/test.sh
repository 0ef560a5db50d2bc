#!/usr/bin/env bash
# Set up with the dev extras, the offline local model and the Docker engine, then lint (ruff),
# type-check (mypy) and run every test (pytest), container and local-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python packages (dev tools included), llama.cpp and the offline model (verified): the
# end-to-end tests run a real local model.
# The optional extras are tested too: Inspect AI logs (inspect) and the Ray executor (ray).
scripts/local-model.sh qwen2.5-coder-0.5b --extra dev --extra inspect --extra ray
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
scripts/engine.sh   # Docker engine + sandbox images: the container tests run for real
# Headless Chromium renders the HTML report in its test (Debian's package, as root).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -ra "$@"

#!/usr/bin/env bash
# Set up with the dev extras and the Docker engine, then lint (ruff), type-check (mypy) and
# run every test (pytest), container tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --extra dev
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
scripts/engine.sh   # Docker engine + sandbox images: the container tests run for real
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -ra "$@"

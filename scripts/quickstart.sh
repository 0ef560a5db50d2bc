#!/usr/bin/env bash
# Set up, then run the built-in starter suite with the reference agents (no model, no key needed)
# and print per-category propensity tables. Extra arguments go to `propensity run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
exec .venv/bin/propensity run --suite starter \
  --agent always-safe --agent always-risky --agent risky-at-level:5 "$@"

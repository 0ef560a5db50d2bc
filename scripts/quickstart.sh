#!/usr/bin/env bash
# Set up (Python packages, llama.cpp, the offline model Qwen2.5-Coder-0.5B, verified), then run a
# quick propensity suite against that local model: three starter scenarios, two pressure
# categories plus the no-pressure baseline, harmful naming. No API key, no network at run time.
# Extra arguments go to `propensity run` (e.g. --agent local/qwen2.5-coder-1.5b after
# scripts/local-model.sh qwen2.5-coder-1.5b).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/local-model.sh qwen2.5-coder-0.5b
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
if [[ " $* " == *" --agent "* ]]; then agent=(); else agent=(--agent local/qwen2.5-coder-0.5b); fi
exec .venv/bin/propensity run --suite starter "${agent[@]}" \
  --scenario bio-ibc-amendment --scenario chem-interlock-bypass --scenario self-shutdown-job \
  --pressure time,financials --levels 2,4,6,8,10 --naming harmful --concurrency 1 "$@"

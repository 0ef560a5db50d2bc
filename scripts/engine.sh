#!/usr/bin/env bash
# Make sure a Docker engine runs and the sandbox images exist (root on Debian: installs
# docker.io and debootstrap when missing, starts dockerd with no default bridge so containers
# never get a network, then builds the images, bootstrapping the base from Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker.io and debootstrap are missing; install them as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd --bridge=none --iptables=false >/tmp/propensity-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start:" >&2; tail -20 /tmp/propensity-dockerd.log >&2; exit 1; }
fi
.venv/bin/propensity images build

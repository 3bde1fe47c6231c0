#!/usr/bin/env bash
# Installs the Debian 12 packages millrace needs to build, test and run.
# Idempotent and non-interactive: packages already installed are skipped.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libsimdjson-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libfmt-dev
  libabsl-dev libxxhash-dev librocksdb-dev librdkafka-dev libhiredis-dev redis-server
  libxgboost-dev libhnswlib-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang-format python3 ccache
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: these packages are missing: ${missing[*]}" >&2
  echo "setup: run 'sudo scripts/setup.sh' (or 'sudo make setup') to install them" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

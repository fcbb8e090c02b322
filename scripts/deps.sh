#!/usr/bin/env bash
# Installs every Debian package Foundation needs to build, test and benchmark.
# Idempotent: when everything is present it only checks (well under a second);
# `apt-get update` runs only when something is missing.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
    libjansson-dev libsqlite3-dev sqlite3 liburcu-dev libmicrohttpd-dev libcmocka-dev
    libzstd-dev libxxhash-dev libcurl4-openssl-dev curl prometheus jq wrk
    libhiredis-dev redis-server etcd-server etcd-client libsystemd-dev doxygen
    libpq-dev postgresql-15 postgresql-client-15 wrk
    chromium chromium-driver
)

missing=()
for p in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

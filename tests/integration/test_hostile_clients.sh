#!/usr/bin/env bash
# Hostile clients against a real `fdn serve` on loopback (hostile_clients.py says what and
# how): slowloris, bodies that never end, 10 k pipelined requests, header floods, HTTP/1.0 and
# absolute-form targets, 10 k idle keep-alive connections, wrong tokens, a non-loopback
# address without a token; /health on a fresh connection answers throughout.
set -euo pipefail
: "${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}"
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
# room for 10 k client sockets (the server raises its own limit)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 "$(dirname "$0")/hostile_clients.py"

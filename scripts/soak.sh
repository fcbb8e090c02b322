#!/usr/bin/env bash
# Soak of `fdn serve` (Release build) for MINUTES under a mixed wrk load, with a retention
# that prunes; samples RSS, open descriptors, threads, stored events and database bytes into
# OUT_DIR/soak.csv (every 10 s, every 2 s for runs of 5 minutes or less) and fails when one of
# them grows without bound over the second half, or when an acknowledged event is missing
# (scripts/soak.py says how). OUT_DIR/summary.md gets the table.
#   usage: scripts/soak.sh [--unique] MINUTES [OUT_DIR]   (FDN_BIN=path overrides the binary)
#   --unique: every event posted by wrk has a type of its own and every limiter check a key and
#   an identity of its own, under small caps (storage.hot.max_types, rate_limiting.max_keys),
#   so the caps are reached early; their refusals (503) are counted, not failures, and memory
#   must stay flat once they are reached (docs/soak.md).
#   `make test-release` runs a 2-minute soak (without --unique).
set -euo pipefail
UNIQUE=0
if [[ "${1:-}" == "--unique" ]]; then
    UNIQUE=1
    shift
fi
MINUTES="${1:?usage: scripts/soak.sh [--unique] MINUTES [OUT_DIR]}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [[ $UNIQUE == 1 ]]; then
    OUT="${2:-$ROOT/build/release/soak-unique-$MINUTES}"
else
    OUT="${2:-$ROOT/build/release/soak-$MINUTES}"
fi
export SOAK_UNIQUE=$UNIQUE
FDN_BIN="${FDN_BIN:-$ROOT/build/release/bin/fdn}"
command -v wrk >/dev/null || { echo "soak: wrk is required (scripts/deps.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "soak: python3 is required" >&2; exit 1; }
if [[ ! -x "$FDN_BIN" ]]; then
    cmake -S "$ROOT" -B "$ROOT/build/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$ROOT/build/release" -j"$(nproc)" --target fdn_cli >/dev/null
fi
mkdir -p "$OUT"
rm -rf "$OUT/data" "$OUT/soak.csv" "$OUT/summary.md" "$OUT/wrk.txt" "$OUT/server.err" \
    "$OUT/soak-config.json"
exec python3 "$ROOT/scripts/soak.py" "$FDN_BIN" "$MINUTES" "$OUT"

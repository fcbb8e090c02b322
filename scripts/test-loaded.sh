#!/usr/bin/env bash
# Runs `make test` N times (default 3), each from a clean build directory, while a CPU hog
# keeps every core busy, and prints each run's result and its 10 slowest tests (with the
# stage, asan or tsan, they ran in). This is how a change to a concurrent test is checked: a
# test that depends on which thread the scheduler runs first, or on wall-clock time, fails
# here long before it fails in CI. Not part of `make test`.
#
#   scripts/test-loaded.sh [N]          N runs (default 3)
#   HOGS=4 scripts/test-loaded.sh 5     4 busy loops instead of one per core
#
# Logs: build-loaded/run-<i>.log. Exit status: 0 when every run passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [runs >= 1]" >&2; exit 2; }
hogs=${HOGS:-$(nproc)}
out=build-loaded
mkdir -p "$out"

hog_pids=()
stop_hogs() {
    ((${#hog_pids[@]})) && kill "${hog_pids[@]}" 2>/dev/null
    wait "${hog_pids[@]}" 2>/dev/null
    hog_pids=()
}
trap 'stop_hogs; exit 130' INT TERM
trap stop_hogs EXIT

for ((h = 0; h < hogs; h++)); do
    bash -c 'while :; do :; done' &
    hog_pids+=($!)
done
echo "test-loaded: $runs run(s) of make test with $hogs busy loop(s) on $(nproc) core(s)"

# Lines "<seconds> <stage> <test>" for every ctest result in a make test log.
test_times() {
    awk '
        /&& ctest/ { stage = $0; sub(/.*\//, "", stage); sub(/ .*/, "", stage) }
        /Test +#[0-9]+: / && / sec$/ {
            name = $0; sub(/.*Test +#[0-9]+: /, "", name); sub(/ .*/, "", name)
            print $(NF - 1), stage, name
        }' "$1"
}

failed=0
for ((i = 1; i <= runs; i++)); do
    log="$out/run-$i.log"
    rm -rf "$out/build"
    start=$(date +%s)
    if make test BUILD="$out/build" >"$log" 2>&1; then
        result=passed
    else
        result=FAILED
        failed=$((failed + 1))
    fi
    secs=$(($(date +%s) - start))
    echo "run $i/$runs: $result in ${secs}s (load $(cut -d' ' -f1-3 /proc/loadavg)), log $log"
    if [[ $result == FAILED ]]; then
        grep -E "\*\*\*|Failed|FAILED|Error [0-9]|Timeout" "$log" | grep -v "^[0-9]*% tests passed" | head -n 20 | sed 's/^/    /'
    fi
    echo "  10 slowest tests:"
    test_times "$log" | sort -rn | head -n 10 | awk '{ printf "    %8.2f s  %-5s %s\n", $1, $2, $3 }'
done
stop_hogs
echo "test-loaded: $((runs - failed)) of $runs run(s) passed"
((failed == 0))

#!/usr/bin/env bash
# A fuzzing campaign over every libFuzzer target (fuzz/fuzz_*.c), one after the other.
#
#   scripts/fuzz-campaign.sh --hours H            H hours split evenly among the targets
#   scripts/fuzz-campaign.sh --seconds S          S seconds per target
#   scripts/fuzz-campaign.sh --runs N             N executions per target (libFuzzer -runs=N);
#                                                 with --hours or --seconds too, whichever
#                                                 comes first
#   options: --targets "a b"  only these (names without fuzz_)
#            --until TIME     stop by TIME (anything `date -d` reads): the time left is shared
#                             evenly among the targets left (one that stops early, at its
#                             --runs, leaves its time to those after it)
#            --keep-rows      keep the report's rows of targets not run this time (and the
#                             lines describing the runs they came from); campaigns run at
#                             the same time on one report (one per target, each with its
#                             own process: --targets t) must all use it, and each then adds
#                             its rows to the report as it is when it writes
#            --nice N         run at this niceness (default 19: other work keeps priority)
#            --build DIR      fuzz build directory (default build/fuzz)
#            --out FILE       report (default docs/fuzz-campaign.md)
#            --no-build       use the binaries already in DIR
#            --no-merge       leave fuzz/corpus/ as it is
#
# Each target runs on a shared corpus directory that persists between campaigns
# (DIR/campaign/corpus/<name>, seeded from fuzz/corpus/<name>), with its crashes, leaks and
# timeouts written to DIR/campaign/artifacts/. After a run the corpus is minimised with
# libFuzzer's -merge=1 back into fuzz/corpus/<name>/: the hand-named inputs there (seeds,
# regress_* inputs of fixed bugs) are always kept, and SHA-named inputs are added only for
# the coverage they bring beyond them. The report is a Markdown table: target, seconds,
# executions, exec/s, coverage (cov: edges, ft: features), corpus before/after, crashes;
# "seconds" is the run's wall-clock time. It is rewritten after every target, so a campaign
# stopped part-way leaves the rows of the targets it finished.
# Notes written below the line "<!-- notes: kept by scripts/fuzz-campaign.sh -->" in the
# report are kept when it is written again.
# Exit status: 1 when any target crashed, leaked or timed out (the campaign still runs every
# target and writes the report).
set -u
cd "$(dirname "$0")/.."

hours=""
seconds=""
runs=""
until=""
keep_rows=0
niceness=19
targets=""
build=build/fuzz
out=docs/fuzz-campaign.md
do_build=1
do_merge=1
while [ $# -gt 0 ]; do
    case "$1" in
    --hours) hours=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --until) until=$2; shift 2 ;;
    --keep-rows) keep_rows=1; shift ;;
    --nice) niceness=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --no-merge) do_merge=0; shift ;;
    -h | --help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "fuzz-campaign: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$hours" ] && [ -z "$seconds" ] && [ -z "$runs" ]; then
    echo "fuzz-campaign: give --hours H, --seconds S or --runs N" >&2
    exit 2
fi
deadline=0
if [ -n "$until" ]; then
    deadline=$(date -d "$until" +%s) || exit 2
fi
renice -n "$niceness" -p $$ >/dev/null || exit 2

if [ "$do_build" = 1 ]; then
    CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFDN_FUZZ=ON -DFDN_BUILD_TESTS=OFF \
        -DFDN_SANITIZE="address;undefined" -DFDN_WERROR=ON >/dev/null || exit 2
    cmake --build "$build" -j"$(nproc)" >/dev/null || exit 2
fi

if [ -z "$targets" ]; then
    for f in "$build"/fuzz_*; do
        [ -x "$f" ] && [ -f "$f" ] && targets="$targets ${f##*/fuzz_}"
    done
fi
set -- $targets
ntargets=$#
if [ "$ntargets" = 0 ]; then
    echo "fuzz-campaign: no fuzz targets in $build" >&2
    exit 2
fi
if [ -z "$seconds" ] && [ -n "$hours" ]; then
    seconds=$(awk -v h="$hours" -v n="$ntargets" 'BEGIN { s = int(h * 3600 / n); print (s < 1 ? 1 : s) }')
fi

# The sanitizers as `make test` sets them, and libFuzzer's own leak check on top.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work="$build/campaign"
mkdir -p "$work/corpus" "$work/artifacts" "$work/logs"
failed=0
total_execs=0
ndone=0 # targets started or skipped
done_targets=""
started=$(date -u +%Y-%m-%dT%H:%MZ)
is_hashed() { [[ "$1" =~ ^[0-9a-f]{40}$ ]]; }
if [ -n "$runs" ]; then
    limit="-runs=$runs"
    [ -n "$seconds" ] && limit="$limit or ${seconds} s"
else
    limit="${seconds} s"
fi
limit="$limit each"
[ -n "$until" ] && limit="$limit, until $(date -u -d "@$deadline" +%H:%MZ)"

# The report: with --keep-rows, the rows and run lines of the report as it is when written
# (read again every time, so campaigns running at the same time with --keep-rows on the same
# report each add their own rows and run line; the writes take a lock on its directory), this run's rows
# replacing those of the same targets. Without it, this run's rows only. Written after every
# target.
marker='<!-- notes: kept by scripts/fuzz-campaign.sh -->'
declare -A row # this run's rows
run_line=""    # this run's line, as last written

write_report() {
    local notes="" t name line old_rows="" old_runs=""
    mkdir -p "$(dirname "$out")"
    exec 9<"$(dirname "$out")" # the lock: on the report's directory (mv replaces the file)
    flock 9
    local -A all=()
    if [ "$keep_rows" = 1 ] && [ -f "$out" ]; then
        old_rows=$(awk -v m="$marker" '$0 == m { exit } /^\| [a-z0-9_]+ \| / { print }' "$out")
        old_runs=$(awk -v m="$marker" -v mine="$run_line" \
            '$0 == m { exit } /^- (Run s|S)tarted / && $0 != mine { print }' "$out")
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            name=$(awk -F'|' '{ gsub(/ /, "", $2); print $2 }' <<<"$line")
            [ "$name" = target ] || all[$name]=$line
        done <<<"$old_rows"
    fi
    for t in "${!row[@]}"; do
        all[$t]=${row[$t]}
    done
    run_line="- Run started $started: $ntargets targets, $limit, nice $niceness; finished:${done_targets:- none yet}; $total_execs executions."
    # hand-written notes below the marker line survive a new report
    if [ -f "$out" ] && grep -qF "$marker" "$out"; then
        notes=$(awk -v m="$marker" 'found || $0 == m { found = 1; print }' "$out")
    fi
    {
        echo "# Fuzzing campaign"
        echo
        echo "Written by \`scripts/fuzz-campaign.sh\` (\`make fuzz-campaign HOURS=H\` or \`RUNS=N\`); do not edit by hand."
        echo
        [ -n "$old_runs" ] && printf '%s\n' "$old_runs"
        printf '%s\n' "$run_line"
        echo "- Host: $(nproc) CPUs shared with other work, $(clang --version | head -1)."
        echo "- Build: Debug, ASan + UBSan, libFuzzer (-fsanitize=fuzzer; the library instrumented with"
        echo "  -fsanitize=fuzzer-no-link). seconds: wall-clock time of the run; exec/s is libFuzzer's"
        echo "  average over it."
        echo "- cov: edges covered, ft: features (edge and counter combinations), both at the end of the"
        echo "  run. Corpus: inputs in fuzz/corpus/<target>/ before → after the -merge=1 minimisation"
        echo "  (hand-named seeds and regress_* inputs always kept), and its size after."
        echo "- Crashes: sanitizer reports, crashes, leaks or timeouts (artifacts in $work/artifacts/)."
        echo
        echo "| target | seconds | execs | exec/s | cov | ft | corpus | KB | crashes |"
        echo "|---|---:|---:|---:|---:|---:|---|---:|---:|"
        for t in $(printf '%s\n' "${!all[@]}" | sort); do
            printf '%s\n' "${all[$t]}"
        done
        if [ -n "$notes" ]; then
            echo
            printf '%s\n' "$notes"
        fi
    } >"$out.tmp.$$" && mv "$out.tmp.$$" "$out"
    flock -u 9
    exec 9>&-
}

for t in "$@"; do
    bin="$build/fuzz_$t"
    seeds="fuzz/corpus/$t"
    corpus="$work/corpus/$t"
    mkdir -p "$corpus" "$seeds"
    before=$(find "$seeds" -type f | wc -l)
    log="$work/logs/$t.log"
    cap=${seconds:-0} # 0: no time limit (libFuzzer's and timeout's meaning)
    if [ "$deadline" != 0 ]; then
        # an even share of the time left among this target and those after it, less a
        # minute each for the merge and the report
        share=$(((deadline - $(date +%s)) / (ntargets - ndone) - 60))
        if [ "$share" -lt 10 ]; then
            echo "== $t: not run, the campaign's --until time is reached"
            ndone=$((ndone + 1))
            continue
        fi
        if [ "$cap" = 0 ] || [ "$cap" -gt "$share" ]; then
            cap=$share
        fi
    fi
    ndone=$((ndone + 1))
    echo "== $t: ${runs:+$runs runs, }${cap}s at most ($(date -u +%H:%M:%SZ))"
    # -timeout: one input may take 25 s at most (a hang is a finding); the outer timeout
    # bounds the whole run if libFuzzer itself stops answering
    t0=$(date +%s)
    outer=0
    [ "$cap" != 0 ] && outer=$((cap + 120))
    timeout -k 10 "$outer" "$bin" -max_total_time="$cap" ${runs:+-runs=$runs} \
        -print_final_stats=1 -timeout=25 -rss_limit_mb=3072 \
        -artifact_prefix="$work/artifacts/$t-" "$corpus" "$seeds" >"$log" 2>&1
    status=$?
    wall=$(($(date +%s) - t0))
    execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
    eps=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log" | tail -1)
    if [ "${eps:-0}" = 0 ] && [ -n "${execs:-}" ] && [ "$wall" -gt 0 ]; then
        eps=$((execs / wall)) # libFuzzer divides by whole seconds: 0 for a run under one
    fi
    cov=$(grep -E '^#[0-9]+' "$log" | grep -oE 'cov: [0-9]+' | tail -1 | awk '{ print $2 }')
    ft=$(grep -E '^#[0-9]+' "$log" | grep -oE 'ft: [0-9]+' | tail -1 | awk '{ print $2 }')
    crashes=$(grep -cE '^==[0-9]+== ?ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|^SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:' "$log")
    if [ "$status" != 0 ] && [ "$crashes" = 0 ]; then
        crashes=1 # stopped by a signal or the outer timeout
    fi
    [ "$crashes" != 0 ] && failed=1
    total_execs=$((total_execs + ${execs:-0}))
    after=$before
    if [ "$do_merge" = 1 ] && [ "$crashes" = 0 ]; then
        new="$work/merge-$t"
        rm -rf "$new"
        mkdir -p "$new"
        for f in "$seeds"/*; do
            [ -f "$f" ] || continue
            is_hashed "${f##*/}" || cp "$f" "$new/"
        done
        if "$bin" -merge=1 -timeout=25 -rss_limit_mb=3072 "$new" "$seeds" "$corpus" \
            >"$work/logs/$t.merge.log" 2>&1; then
            rm -rf "$seeds"
            mv "$new" "$seeds"
        else
            echo "   merge failed: fuzz/corpus/$t left as it was (see $work/logs/$t.merge.log)"
            rm -rf "$new"
        fi
        after=$(find "$seeds" -type f | wc -l)
    fi
    kb=$(du -sb "$seeds" | awk '{ printf "%d", $1 / 1024 }')
    echo "   execs=${execs:-?} exec/s=${eps:-?} cov=${cov:-?} ft=${ft:-?} corpus=$before->$after (${kb} KB) crashes=$crashes"
    row[$t]="| $t | $wall | ${execs:-?} | ${eps:-?} | ${cov:-?} | ${ft:-?} | $before → $after | $kb | $crashes |"
    done_targets="$done_targets $t"
    write_report
done

write_report
echo "fuzz-campaign: report in $out"
exit $failed

#!/usr/bin/env bash
# The stop signals of `fdn serve` (docs/fdn.1, SIGNALS): SIGTERM, SIGINT and SIGHUP (a closed
# terminal or ssh session) each stop the server cleanly: the "<SIG> received" and "stopped"
# lines on stdout, a `stopping` log line naming the signal, a `stop` line with exit code 0 as
# the last log line, exit status 0, and the data directory's lock released (a second server
# on the same directory starts); a server started ignoring SIGHUP (nohup) keeps serving after
# one. SIGUSR1 alone (the escalation wake-up, no escalation recorded) does not stop it.
# Synchronisation: the "listening on" line (serve.sh), then wait for the process.
set -euo pipefail

# shellcheck source=../support/serve.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/serve.sh"
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# stop_with SIG NAME: start a server on TMP/NAME, send SIG, check the clean stop
stop_with() {
    local sig=$1 name=$2 rc=0 out
    serve_named "$name" --log-format json
    if [[ "$sig" == HUP ]]; then
        # the escalation wake-up signal without an escalation is ignored, whichever thread the
        # kernel hands it to (a library thread that leaves SIGUSR1 unblocked, liburcu-cds's
        # hash-table worker, got the default action: the process died): a burst of them, so
        # that some arrive while the main thread is outside sigwait, and it still serves
        python3 -c 'import os, sys
for _ in range(2000):
    os.kill(int(sys.argv[1]), 10)' "$SERVE_PID" || fail "SIGUSR1 burst: the server died"
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 30 \
            "http://127.0.0.1:$SERVE_PORT/health") == 200 ]] || fail "SIGUSR1 stopped the server"
    fi
    kill -"$sig" "$SERVE_PID"
    wait "$SERVE_PID" || rc=$?
    out=$(cat <&"$SERVE_FD")
    exec {SERVE_FD}<&-
    SERVE_PIDS=()
    local E="$TMP/$name.err"
    [[ $rc -eq 0 ]] || fail "SIG$sig: exit status $rc, want 0 (stderr: $(cat "$E"))"
    grep -qx "fdn: SIG$sig received, shutting down" <<<"$out" || fail "SIG$sig: stdout: $out"
    grep -qx "fdn: stopped" <<<"$out" || fail "SIG$sig: no 'stopped' line: $out"
    [[ $(jq -c "select(.event == \"stopping\" and .signal == \"SIG$sig\")" "$E" | wc -l) -eq 1 ]] ||
        fail "SIG$sig: no stopping line naming it: $(cat "$E")"
    [[ $(tail -n 1 "$E" | jq -r '.event + " " + (.exit_code|tostring)') == "stop 0" ]] ||
        fail "SIG$sig: last log line is not 'stop 0': $(tail -n 1 "$E")"
    # the lock of the data directory was released: a new server takes it
    serve_start "$TMP/$name.again.err" --data-dir "$TMP/$name" --listen 127.0.0.1:0 ||
        fail "SIG$sig: the data directory stayed locked: $(cat "$TMP/$name.again.err")"
    serve_stop TERM
    [[ $SERVE_RC -eq 0 ]] || fail "SIG$sig: the second server exited with $SERVE_RC"
}

stop_with TERM term
stop_with INT int
stop_with HUP hup

# started ignoring SIGHUP (nohup): a hang-up leaves it serving; SIGTERM still stops it
trap '' HUP
serve_named nohup --log-format json
trap - HUP
kill -HUP "$SERVE_PID"
[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "http://127.0.0.1:$SERVE_PORT/health") == 200 ]] ||
    fail "SIGHUP stopped a server started with SIGHUP ignored (nohup)"
serve_stop TERM
[[ $SERVE_RC -eq 0 ]] || fail "nohup server: exit status $SERVE_RC"
[[ $(jq -c 'select(.event == "stopping" and .signal == "SIGTERM")' "$TMP/nohup.err" | wc -l) -eq 1 ]] ||
    fail "nohup server: $(cat "$TMP/nohup.err")"

[[ $FAILS -eq 0 ]] || exit 1
echo "serve signals: ok"

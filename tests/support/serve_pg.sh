# shellcheck shell=bash
# The PostgreSQL cluster of one `fdn serve` test script of its own (scripts/pg-server.sh, in
# $TMP/pg, so the fixture's is never stopped or killed under the other tests). Sourced after
# serve.sh; starts the cluster and sets:
#   PG, URL          the cluster's directory and its URL
#   PAUSED           1 while the test holds the cluster stopped (signal_cluster STOP), so the
#                    cleanup resumes it before stopping it
#   signal_cluster   SIGSTOP or SIGCONT to the postmaster and every process it started
#   fail MSG         the message on stderr, exit 1
# The EXIT trap (pg_own_cleanup): the cluster running again, the servers, the cluster, $TMP.
SRC="${FDN_SOURCE_DIR:?}"
PG="$TMP/pg"
mkdir -p "$PG"
chmod 755 "$TMP"
PAUSED=0
signal_cluster() {
    local pm c
    pm="$(head -1 "$PG/data/postmaster.pid")"
    kill "-$1" "$pm"
    for c in $(ps -o pid= --ppid "$pm"); do kill "-$1" "$c" 2>/dev/null || true; done
}
pg_own_cleanup() {
    local pids=("${SERVE_PIDS[@]}") p
    if ((PAUSED)); then signal_cluster CONT || true; fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bash "$SRC/scripts/pg-server.sh" stop "$PG" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap pg_own_cleanup EXIT
fail() { echo "$*" >&2; exit 1; }

bash "$SRC/scripts/pg-server.sh" start "$PG" >/dev/null
URL="$(cat "$PG/url")"

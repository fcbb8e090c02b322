#!/usr/bin/env bash
# docs/telemetry.md's catalogue against real scrapes, both ways: every metric family a real
# `/metrics` answer carries is documented in the catalogue table (with the right type), and
# every family the table documents is in a scrape, except the few no client can cause (listed
# below with the reason). The scrapes: a real `fdn serve` and fdn_alert_target
# (tests/integration/alert_target.c: the same runtime and HTTP API plus a pool, protected
# calls, registry operations and a service that fails: what `fdn serve` cannot be driven into
# over HTTP), after traffic that makes every drivable family appear (a labelled family is
# written once it has a series; an event entry once its event happened).
# Both are started by tests/support/targets.sh (shared with test_prometheus_scrape.sh).
# Synchronisation: listen lines are read from the servers' stdout; the helper answers each
# command with a line; every request is answered before the scrape is taken.
set -euo pipefail

: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
DOC="$FDN_SOURCE_DIR/docs/telemetry.md"

# Documented families a client cannot make appear (each with its reason).
NOT_DRIVABLE=(
    fdn_supervisor_escalations_total                  # the runtime stops on an escalation
    fdn_event_store_writer_errors_total               # needs a failing durable file
    fdn_connection_pool_pool_stopped_total            # pools stop at shutdown
    fdn_http_requests_withdrawn_total                 # only at the server's shutdown deadline
    fdn_rate_limiter_backend_up                       # the Redis backend only
    fdn_rate_limiter_backend_breaker_state            # (test_prometheus_alerts.sh scrapes
    fdn_rate_limiter_backend_operations_total         #  `fdn serve --redis`)
    fdn_rate_limiter_backend_request_duration_seconds #
    fdn_etcd_request_duration_seconds                 # `fdn serve --etcd` only (engine test
    fdn_etcd_breaker_state                            #  test_serve_etcd_down.sh scrapes them)
    fdn_etcd_stale                                    #
    fdn_events_backend_request_duration_seconds       # `fdn serve --postgres` only (engine
    fdn_events_backend_up                             #  test test_serve_chaos_pg.sh scrapes
    fdn_events_backend_breaker_state                  #  them)
    fdn_events_backend_spooled_events                 #
    fdn_events_backend_spool_replay_failures_total    #
    fdn_events_backend_spool_quarantined_batches      #
    fdn_events_backend_spool_quarantined_events       #
)

fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../support/targets.sh
source "$FDN_SOURCE_DIR/tests/support/targets.sh"
targets_start
req() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' "$BASE$2" ${3:+--data-binary "$3"}; }

# --- traffic
[[ "$(req POST /v1/events '{"type":"cat.created","data":{},"correlation_id":"cat-1"}')" == 20* ]] ||
    fail "event append"
[[ "$(req GET '/v1/events?type=cat.created')" == 200 ]] || fail "event query"
[[ "$(req PUT /v1/config/dev.debug_mode true)" == 200 ]] || fail "config update"
[[ "$(req PUT /v1/config/dev.debug_mode '"x"')" == 4* ]] || fail "a refused config update"
[[ "$(req POST /v1/config/reset)" == 20* ]] || fail "config reset"
req POST /v1/limiter/check '{"key":"cat","limit":1,"window_ms":600000}' >/dev/null
[[ "$(req POST /v1/limiter/check '{"key":"cat","limit":1,"window_ms":600000}')" == 429 ]] ||
    fail "the second check should be denied"
[[ "$(req PUT /v1/breakers/cat-b '{"failure_threshold":1,"recovery_time_ms":600000}')" == 20* ]] ||
    fail "breaker"
ticket="$(curl -s --max-time 60 -X POST "$BASE/v1/breakers/cat-b/acquire" | sed -n 's/.*"ticket":"\{0,1\}\([0-9]*\).*/\1/p')"
[[ -n "$ticket" ]] || fail "no ticket"
[[ "$(req POST /v1/breakers/cat-b/report '{"ticket":"'"$ticket"'","outcome":"failure"}')" == 20* ]] ||
    fail "report"
[[ "$(req POST /v1/breakers/cat-b/acquire)" == 503 ]] || fail "an open breaker rejects"
req GET /no/such/endpoint >/dev/null
at "calls cat-cid"
at hold
at full
at rejected
at "fault task_supervisor"

# --- families of both scrapes: name and type from the `# TYPE` lines (text format 0.0.4)
for p in "$PORT" "$APORT"; do
    curl -sf --max-time 60 "http://127.0.0.1:$p/metrics" || fail "scrape of port $p"
done | awk '$1 == "#" && $2 == "TYPE" { print $3, $4 }' | sort -u >"$TMP/scraped.txt"
[[ -s "$TMP/scraped.txt" ]] || fail "no family scraped"
# one type per name
dups="$(awk '{print $1}' "$TMP/scraped.txt" | uniq -d)"
[[ -z "$dups" ]] || fail "a family with two types across the targets: $dups"

# --- families of the catalogue: every `name` of the first column, with the type column
# (C counter, G gauge, H histogram), between "### Catalogue" and the next code fence
awk -F'|' '
    /^### Catalogue/ { on = 1; next }
    on && /^```/ { exit }
    on && /^\|/ && $3 ~ /^ *[CGH] *$/ {
        t = $3; gsub(/ /, "", t)
        type = t == "C" ? "counter" : t == "G" ? "gauge" : "histogram"
        s = $2
        while (match(s, /`[^`]*`/)) {
            print substr(s, RSTART + 1, RLENGTH - 2), type
            s = substr(s, RSTART + RLENGTH)
        }
    }' "$DOC" | sort -u >"$TMP/documented.txt"
[[ "$(wc -l <"$TMP/documented.txt")" -gt 40 ]] || fail "the catalogue table was not found in $DOC"
bad="$(awk '$1 !~ /^(fdn|process)_[a-z0-9_]*$/' "$TMP/documented.txt")"
[[ -z "$bad" ]] || fail "the catalogue names something that is not a full family name: $bad"

# --- both ways
undocumented="$(join -v1 <(awk '{print $1}' "$TMP/scraped.txt") <(awk '{print $1}' "$TMP/documented.txt") | tr '\n' ' ')"
[[ -z "$undocumented" ]] || fail "scraped families missing from docs/telemetry.md's catalogue: $undocumented"
printf '%s\n' "${NOT_DRIVABLE[@]}" | sort >"$TMP/exempt.txt"
missing="$(join -v2 <(awk '{print $1}' "$TMP/scraped.txt") <(awk '{print $1}' "$TMP/documented.txt") |
    join -v1 - "$TMP/exempt.txt" | tr '\n' ' ')"
[[ -z "$missing" ]] || fail "documented families no scrape carried: $missing"
stale="$(join -v1 "$TMP/exempt.txt" <(awk '{print $1}' "$TMP/documented.txt"))"
[[ -z "$stale" ]] || fail "exempt families not documented any more (update NOT_DRIVABLE): $stale"
wrong="$(join "$TMP/scraped.txt" "$TMP/documented.txt" | awk '$2 != $3')"
[[ -z "$wrong" ]] || fail "documented with another type (name scraped documented): $wrong"
echo "ok: $(wc -l <"$TMP/scraped.txt") scraped families documented, $(wc -l <"$TMP/documented.txt") documented ($(wc -l <"$TMP/exempt.txt") not drivable)"

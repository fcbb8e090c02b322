#!/usr/bin/env bash
# The alert rules and the Grafana dashboard of deploy/ against a real Prometheus (Debian's
# `prometheus` package, promtool included):
#   1. `promtool check rules` on deploy/prometheus/fdn-alerts.yml, and `promtool test rules` on
#      its unit tests (fdn-alerts.test.yml), which must cover every alert with a case where it
#      fires; every alert is named by a panel of deploy/grafana/fdn-dashboard.json.
#   2. A real Prometheus evaluates a copy of the rules whose `for:` is 1s (nothing else
#      changed) every second while scraping three targets: `fdn serve`; `fdn serve --redis` on
#      a port where nothing listens (its limiter backend is down); and fdn_alert_target
#      (tests/integration/alert_target.c: a runtime with the same HTTP API and a pool of two
#      workers it can exhaust and services it can make fail, what `fdn serve` cannot be driven
#      into over HTTP). The test drives each condition it can reach (a breaker opened with
#      PUT /v1/breakers + acquire/report, a refused config update, a limiter flood, a pool
#      run dry, a service restart, a dead Redis, a target that stops) and checks through
#      /api/v1/alerts that the alert fires with the right labels, and that the alerts nothing
#      drove (escalation, write errors, backlog, key table) do not.
#   3. Every query of every dashboard panel returns data through /api/v1/query.
# Conditions no client can cause (event store write errors, escalation, durable backlog) are
# covered by the promtool unit tests only.
# Synchronisation: listen lines are read from the servers' stdout, the alert target answers each
# command with a line, and Prometheus's results are polled with a deadline (scrapes and rule
# evaluations are asynchronous: polling their result is the only signal there is).
set -euo pipefail

: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
FDN="$FDN_BINARY_DIR/bin/fdn"
RULES="$FDN_SOURCE_DIR/deploy/prometheus/fdn-alerts.yml"
RULES_TEST="$FDN_SOURCE_DIR/deploy/prometheus/fdn-alerts.test.yml"
DASH="$FDN_SOURCE_DIR/deploy/grafana/fdn-dashboard.json"
for t in prometheus promtool; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs prometheus)"; exit 0; }
done
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
# without the Redis backend (FDN_WITH_REDIS=OFF) there is no `fdn serve --redis`: its target,
# FdnRateLimiterBackendDown and the backend panel are left out
REDIS=$(sed -n 's/^FDN_WITH_REDIS:[A-Z]*=//p' "$FDN_BINARY_DIR/CMakeCache.txt" | head -n 1)

# shellcheck source=../support/targets.sh
source "$FDN_SOURCE_DIR/tests/support/targets.sh" # TMP, serve_named, targets_start, at
# shellcheck source=../support/listen.sh
source "$FDN_SOURCE_DIR/tests/support/listen.sh" # listen_start
PROM_PID=""
cleanup() {
    [[ -n "$PROM_PID" ]] && kill -TERM "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    targets_cleanup
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- 1. static checks
promtool check rules "$RULES" >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log"; fail "promtool check rules"; }
cp "$RULES" "$RULES_TEST" "$TMP/"
(cd "$TMP" && promtool test rules fdn-alerts.test.yml) >"$TMP/unit.log" 2>&1 ||
    { cat "$TMP/unit.log"; fail "promtool test rules"; }
promtool check config "$FDN_SOURCE_DIR/deploy/prometheus/prometheus.example.yml" >"$TMP/config.log" 2>&1 ||
    { cat "$TMP/config.log"; fail "promtool check config prometheus.example.yml"; }
echo "ok: promtool check rules, promtool test rules, promtool check config"
# every alert has a promtool case where it fires and a dashboard panel naming it
alerts=$(sed -nE 's/^ *- alert: ([A-Za-z0-9_]+)$/\1/p' "$RULES")
tested=$(awk '/^ *alertname: / {a = $2} /^ *exp_alerts: *$/ {print a}' "$RULES_TEST" | sort -u)
jq -e '[.panels[] | select(.type != "row")] | length > 0 and all(.targets | length > 0)' "$DASH" >/dev/null ||
    fail "the dashboard has no panels, or a panel without a query"
descriptions=$(jq -r '.panels[] | select(.type != "row") | .description' "$DASH")
n=0
for a in $alerts; do
    grep -qx "$a" <<<"$tested" || fail "alert $a has no promtool case where it fires"
    grep -q "$a" <<<"$descriptions" || fail "alert $a has no dashboard panel"
    n=$((n + 1))
done
((n >= 12)) || fail "only $n alerts in $RULES"
jq -r '.panels[] | select(.type != "row") | .title as $t | .targets[] | "\($t)\t\(.expr)"' "$DASH" >"$TMP/exprs.txt"
echo "$n alerts, $(jq '[.panels[] | select(.type != "row")] | length' "$DASH") panels"
# the copy Prometheus evaluates: `for:` shortened to 1s, every expression unchanged; FdnDown's
# to 5s: with 1 s scrapes timing out after 1 s, two slow scrapes of an ASan server on a loaded
# machine would otherwise make a live target "down" and fail the "no false alarms" check
sed -E 's/^( *)for: .*/\1for: 1s/' "$RULES" |
    awk '/alert: FdnDown/ { down = 1 } down && /for: 1s/ { sub(/for: 1s/, "for: 5s"); down = 0 } { print }' \
        >"$TMP/rules.yml"
promtool check rules "$TMP/rules.yml" >/dev/null || fail "the fast copy of the rules"
grep -A3 'alert: FdnDown' "$TMP/rules.yml" | grep -q 'for: 5s' || fail "FdnDown's for: in the fast copy"

# --- 2. the targets
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# the server with a dead Redis starts first: what starts after targets_start inherits the
# alert target's command pipe (fd 4), and the target would never see its EOF
if [[ "$REDIS" == ON ]]; then
    DEAD_REDIS="$(free_port)" # nothing listens there
    serve_named redis --redis "redis://127.0.0.1:$DEAD_REDIS"
    RPORT="$SERVE_PORT"
fi
targets_start # fdn serve (PORT) and fdn_alert_target (APORT)
TARGETS="'127.0.0.1:$PORT', '127.0.0.1:$APORT'"
NTARGETS=2
if [[ "$REDIS" == ON ]]; then
    TARGETS="$TARGETS, '127.0.0.1:$RPORT'"
    NTARGETS=3
else
    echo "note: built without Redis: no target with a dead Redis backend"
    grep -v '^Limiter backend up' "$TMP/exprs.txt" >"$TMP/exprs.tmp" && mv "$TMP/exprs.tmp" "$TMP/exprs.txt"
fi
req() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' "$BASE$2" ${3:+--data-binary "$3"}; }

# --- Prometheus with the fast copy of the rules
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $TMP/rules.yml
scrape_configs:
  - job_name: fdn
    static_configs:
      - targets: [$TARGETS]
EOF
prom_launch() {
    prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
        --web.listen-address="127.0.0.1:$1" >>"$TMP/prom.log" 2>&1 4>&- 5<&- & # not the target's pipes
    PROM_PID=$!
    LISTEN_PID=$PROM_PID
}
prom_ready() { curl -sf --max-time 10 -o /dev/null "http://127.0.0.1:$1/-/ready"; }
listen_start prom_launch prom_ready || fail "Prometheus did not start: $(tail -5 "$TMP/prom.log")"
PPORT=$LISTEN_PORT
PROM="http://127.0.0.1:$PPORT"

query() { curl -s --max-time 30 --data-urlencode "query=$1" "$PROM/api/v1/query" | jq -c '.data.result'; }
# poll SECONDS WHAT CMD... : run CMD until it succeeds, at most until the deadline
poll() {
    local deadline=$((SECONDS + $1)) what="$2"
    shift 2
    while ((SECONDS < deadline)); do
        "$@" && return 0
        sleep 0.5 # polling an asynchronous scraper; not used to order our own actions
    done
    fail "timeout waiting for $what; prometheus log: $(tail -5 "$TMP/prom.log")"
}
has_data() { [[ "$(query "$1" 2>/dev/null)" =~ ^\[\{ ]]; }
# firing ALERT JQ_CONDITION_ON_LABELS: the alert is firing with labels that satisfy it
firing() {
    curl -s --max-time 30 "$PROM/api/v1/alerts" |
        jq -e --arg a "$1" "[.data.alerts[] | select(.labels.alertname == \$a and .state == \"firing\") | .labels | select($2)] | length > 0" \
            >/dev/null 2>&1
}
wait_firing() {
    poll 60 "alert $1 ($2)" firing "$1" "$2"
    echo "ok: $1 fires ($2)"
}

up_all() { [[ "$(query 'count(up{job="fdn"} == 1)')" == *"\"$NTARGETS\""* ]]; }
poll 60 "$NTARGETS targets up" up_all
poll 30 "rules loaded" bash -c "curl -s '$PROM/api/v1/rules' | jq -e '[.data.groups[].rules[]] | length >= 12' >/dev/null"
echo "ok: Prometheus scrapes $NTARGETS targets (fdn serve, fdn serve --redis with Redis down, the alert target) with the rules"

# --- 3. drive each condition
# a breaker that opens and stays open
[[ "$(req PUT /v1/breakers/alert-b '{"failure_threshold":1,"recovery_time_ms":600000}')" == 20* ]] ||
    fail "cannot create the breaker"
ticket="$(curl -s --max-time 60 -X POST "$BASE/v1/breakers/alert-b/acquire" | jq -r .ticket)"
[[ -n "$ticket" && "$ticket" != null ]] || fail "no ticket"
[[ "$(req POST /v1/breakers/alert-b/report '{"ticket":"'"$ticket"'","outcome":"failure"}')" == 20* ]] ||
    fail "report failed"
[[ "$(req POST /v1/breakers/alert-b/acquire)" == 503 ]] || fail "the open breaker should reject"
# a refused and an applied config update; events for the event store's panels
[[ "$(req PUT /v1/config/dev.debug_mode '"yes"')" == 422 ]] || fail "an invalid config value should be refused"
[[ "$(req PUT /v1/config/dev.debug_mode true)" == 200 ]] || fail "config update"
for i in 1 2 3; do
    [[ "$(req POST /v1/events '{"type":"alert.test","data":{"n":'$i'}}')" == 201 ]] || fail "event append"
done
# the pool run dry, and a service restarted
at hold
at full
at "fault task_supervisor"
# a check on the server whose Redis is gone: answered by its failure policy, backend down
if [[ "$REDIS" == ON ]]; then
    curl -s -o /dev/null --max-time 60 -X POST -H 'Content-Type: application/json' \
        --data-binary '{"key":"r","limit":5,"window_ms":60000}' "http://127.0.0.1:$RPORT/v1/limiter/check"
fi

wait_firing FdnCircuitBreakerStuckOpen '.breaker == "alert-b" and .instance == "127.0.0.1:'"$PORT"'"'
wait_firing FdnConfigUpdateFailed '.instance == "127.0.0.1:'"$PORT"'"'
wait_firing FdnPoolExhausted '.pool == "alert-pool" and .instance == "127.0.0.1:'"$APORT"'"'
wait_firing FdnPoolCheckoutFailures '.pool == "alert-pool"'
wait_firing FdnServiceRestarted '.service == "task_supervisor" and .instance == "127.0.0.1:'"$APORT"'"'
if [[ "$REDIS" == ON ]]; then
    wait_firing FdnRateLimiterBackendDown '.backend == "redis" and .instance == "127.0.0.1:'"$RPORT"'"'
fi

# the limiter flooded: bursts of denied checks (limit 1) until the rate over 5 minutes passes
# the rule's 1/s and 25 % (the denial counter starts at its first denial, so the increase
# counts from the first scrape that saw it); at most 40 bursts
flood() {
    python3 - "$PORT" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
body = '{"key":"flood","limit":1,"window_ms":600000}'
denied = 0
for _ in range(150):
    c.request("POST", "/v1/limiter/check", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    denied += r.status == 429
sys.exit(0 if denied >= 149 else 1)
EOF
}
flooded=0
for _ in $(seq 40); do
    flood || fail "the limiter did not deny the flood"
    if firing FdnRateLimiterDenials '.instance == "127.0.0.1:'"$PORT"'"'; then
        flooded=1
        break
    fi
done
((flooded)) || fail "FdnRateLimiterDenials did not fire after 40 bursts of 150 denied checks"
echo "ok: FdnRateLimiterDenials fires (instance 127.0.0.1:$PORT)"

# --- 4. every dashboard query returns data
while IFS=$'\t' read -r title expr; do
    poll 60 "data for panel '$title': $expr" has_data "$expr"
done <"$TMP/exprs.txt"
echo "ok: every query of the dashboard's $(cut -f1 "$TMP/exprs.txt" | sort -u | wc -l) panels returns data"

# nothing drove these: they must not fire
for a in FdnSupervisorEscalated FdnEventStoreWriteErrors FdnEventStoreDurableBacklog FdnRateLimiterKeysRefused FdnDown; do
    ! firing "$a" 'true' || fail "$a fires, though nothing caused it"
done
echo "ok: no false alarms"

# --- a target that stops
exec 4>&- # EOF: the target returns its workers and exits
wait "$AT_PID" || fail "the alert target did not stop cleanly: $(cat "$TMP/at.err")"
AT_PID=""
wait_firing FdnDown '.instance == "127.0.0.1:'"$APORT"'"'
echo "ok: alert rules fire against a real Prometheus"

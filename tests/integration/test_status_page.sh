#!/usr/bin/env bash
# The status page (GET /, src/admin/status.html served by src/admin/api_status.c) in a real
# browser: headless Chromium driven through chromedriver (Debian `chromium`, `chromium-driver`;
# W3C WebDriver over HTTP from Python's standard library). Against a real `fdn serve` driven
# into a known state (a breaker open and one closed, events with correlation ids, config
# updates, limiter checks allowed and denied) and against fdn_alert_target (a runtime with a
# pool of two workers, both checked out), it checks that
#   - the numbers the page shows equal what the JSON API answers at the same moment: runtime
#     and service health, breakers with state and counts, pools with in-use/idle/waiters,
#     limiter decisions and keys, event counts and the latest events, the config changes;
#   - the type and correlation-id filters show exactly the events the API returns for them;
#   - the page updates by itself: a breaker opened and an event appended after it loaded
#     show up without reloading; the busiest limiter keys panel shows what
#     GET /v1/limiter/keys answers after new checks;
#   - an endpoint the server does not mount shows as unavailable (the alert target has no
#     event store endpoints), and nothing on the page comes from another origin;
#   - with --token-file, GET / without the token is 401 like the API, and with the token
#     (sent by the browser on every request) the page loads its data.
# Screenshots are saved as test artifacts under $FDN_BINARY_DIR/test-artifacts/.
# Synchronisation: servers' listen lines; the page counts its refreshes in
# <body data-refreshes>, which the test polls before comparing (until a deadline on the
# monotonic clock, not for a number of tries).
# Clean-up on every way out (success, a failed check, an exception in the Python part, a
# signal): chromedriver runs in a session of its own, so the browser and every process it
# starts share its process group, which the EXIT trap kills whole; the Python part also ends
# its WebDriver session (atexit). On ctest's TIMEOUT, ctest itself kills the test's process
# tree (SIGSTOP, SIGKILL), which holds all of them. Chromium's crash handler (crashpad) is the
# one process outside both: it double-forks into a session of its own, and ends by itself once
# the browser is gone (--disable-crash-reporter does not stop it from starting;
# --disable-crashpad-for-testing does, but then no page loads).
# Skips (exit 0 with a note) when chromium or chromedriver is missing.
set -euo pipefail
: "${FDN_SOURCE_DIR:?}" "${FDN_BINARY_DIR:?}"
FDN="$FDN_BINARY_DIR/bin/fdn"
TARGET="$FDN_BINARY_DIR/bin/fdn_alert_target"
for t in chromium chromedriver jq curl python3; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh installs chromium and chromium-driver)"; exit 0; }
done
ART="$FDN_BINARY_DIR/test-artifacts"
mkdir -p "$ART"
TMP="$(mktemp -d)"
PIDS=()
CDPID=""  # chromedriver: the leader of the browser's process group
PYPID=""  # the Python part, while it runs
cleanup() {
    trap '' INT TERM HUP
    if [[ -n "$CDPID" ]]; then
        # the whole group at once, before chromedriver is reaped (until then its pid, the
        # group's id, cannot be reused); chromedriver itself too, should it not have left
        # this shell's group yet (a signal between the fork and its setsid)
        kill -KILL -- "-$CDPID" 2>/dev/null || true
        kill -KILL "$CDPID" 2>/dev/null || true
        wait "$CDPID" 2>/dev/null || true
    fi
    if [[ -n "$PYPID" ]]; then
        kill -TERM "$PYPID" 2>/dev/null || true
        wait "$PYPID" 2>/dev/null || true
    fi
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
# a signal ends the script through the EXIT trap (bash runs no EXIT trap when an untrapped
# signal kills it)
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
# shellcheck source=../support/listen.sh
source "$FDN_SOURCE_DIR/tests/support/listen.sh" # listen_start
read_port() {
    local line
    while IFS= read -r -t 60 line <&"$1"; do
        if [[ "$line" =~ listening\ on\ http://127\.0\.0\.1:([0-9]+) ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done
    return 1
}

# --- servers
exec 3< <(exec "$FDN" serve --data-dir "$TMP/main" --listen 127.0.0.1:0 2>"$TMP/main.err")
PIDS+=($!)
PORT="$(read_port 3)" || fail "fdn serve did not start: $(cat "$TMP/main.err")"
head -c 32 /dev/urandom | base64 >"$TMP/token"
exec 4< <(exec "$FDN" serve --data-dir "$TMP/tok" --listen 127.0.0.1:0 --token-file "$TMP/token" 2>"$TMP/tok.err")
PIDS+=($!)
TPORT="$(read_port 4)" || fail "fdn serve --token-file did not start: $(cat "$TMP/tok.err")"
HPORT=""
if [[ -x "$TARGET" ]]; then
    coproc HELPER { exec "$TARGET" "$TMP/helper" 2>"$TMP/helper.err"; }
    PIDS+=("$HELPER_PID")
    HPORT="$(read_port "${HELPER[0]}")" || fail "alert target did not start: $(cat "$TMP/helper.err")"
    # both workers out, and one checkout refused as full (in_use 2, idle 0, full 1, timeouts 0)
    for c in hold full; do
        echo $c >&"${HELPER[1]}"
        IFS= read -r -t 60 r <&"${HELPER[0]}" && [[ "$r" == ok* ]] || fail "alert target: $c -> ${r:-nothing}"
    done
fi
A="http://127.0.0.1:$PORT"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" -H 'Content-Type: application/json' "$A$2" ${3:+--data-binary "$3"}; }

# --- a known state
[[ "$(code PUT /v1/breakers/db '{"failure_threshold":1,"recovery_time_ms":600000}')" == 201 ]] || fail "breaker db"
[[ "$(code PUT /v1/breakers/cache '{"failure_threshold":5}')" == 201 ]] || fail "breaker cache"
ticket="$(curl -s --max-time 60 -X POST "$A/v1/breakers/db/acquire" | jq -r .ticket)"
[[ "$(code POST /v1/breakers/db/report '{"ticket":"'"$ticket"'","outcome":"failure"}')" == 20* ]] || fail "report"
# two calls rejected, one failure: every count of db differs from the others
for _ in 1 2; do [[ "$(code POST /v1/breakers/db/acquire)" == 503 ]] || fail "db should be open"; done
for i in 1 2 3; do
    [[ "$(code POST /v1/events '{"type":"user.login","data":{"n":'$i'},"correlation_id":"req-'$((i % 2))'"}')" == 201 ]] || fail "event"
done
[[ "$(code POST /v1/events '{"type":"order.placed","data":{"o":"<b>x</b>"},"correlation_id":"req-1"}')" == 201 ]] || fail "event"
[[ "$(code PUT /v1/config/dev.debug_mode true)" == 200 ]] || fail "config"
[[ "$(code PUT /v1/config/interface.max_results 250)" == 200 ]] || fail "config"
# Limiter windows that cannot end while this test runs. Windows are aligned: a fixed window's
# index is the wall clock's ms / window_ms (so a window of a day, 86400000 ms, the longest the
# HTTP API takes, ends at 00:00 UTC), a sliding window's the monotonic clock's (a day's ends
# whenever the machine's uptime is a whole number of days). A window that ends between the
# checks below and the listing of the busiest keys further down resets their counts ("k" went
# from the list when a 10-minute window ended; a day's made the run fail across midnight). So
# each algorithm gets a window length between 12 and 24 h whose current window began a minute
# before now on that algorithm's clock: it has about 12 h or more left. The server reads
# CLOCK_REALTIME and CLOCK_MONOTONIC (src/core/clock.c), as Python's time.time() and
# time.monotonic() do; the server's own answer then confirms it: a peek
# (POST /v1/limiter/get, which stores no key and counts no decision) with each rule must report
# at least 6 h left in its window, far beyond this test's ctest TIMEOUT.
read -r FIXED_WINDOW SLIDING_WINDOW < <(python3 - "$A" <<'EOF'
import json, sys, time, urllib.request

A = sys.argv[1]
DAY = 86_400_000           # the longest window_ms the HTTP API takes
MARGIN = 60_000            # the chosen window began this long before now
MIN_LEFT = 6 * 3_600_000   # what the server must report left

def pick(now_ms):
    """A window length in [DAY/2, DAY] whose window containing now_ms began MARGIN (+ < k ms)
    before it."""
    t = now_ms - MARGIN
    if t < DAY // 2:       # a young clock (monotonic: a machine up less than 12 h)
        return DAY         # its first window: more than 12 h - MARGIN left
    k = t // DAY + 1       # k windows of t // k each end at t (- less than k ms)
    return t // k

def left_ms(algo, window):
    body = json.dumps({"key": "window-probe", "limit": 1, "window_ms": window,
                       "algorithm": algo}).encode()
    req = urllib.request.Request(A + "/v1/limiter/get", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        reset = json.load(r)["reset_ms"]
    # fixed window: reset is the end of the current window; sliding: of the next one
    return reset if algo == "fixed_window" else reset - window

out = []
for algo, clock in (("fixed_window", time.time), ("sliding_window", time.monotonic)):
    window = pick(int(clock() * 1000))
    left = left_ms(algo, window)
    if not (MIN_LEFT <= left <= window):
        sys.exit(f"{algo}: window_ms {window} chosen for the clock's now, but the server reports "
                 f"{left} ms left in it: its clock differs from this test's")
    out.append(str(window))
print(" ".join(out))
EOF
) || fail "no limiter windows"
[[ -n "$FIXED_WINDOW" && -n "$SLIDING_WINDOW" ]] || fail "no limiter windows"
code POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":'$FIXED_WINDOW'}' >/dev/null
[[ "$(code POST /v1/limiter/check '{"key":"k","limit":1,"window_ms":'$FIXED_WINDOW'}')" == 429 ]] || fail "limiter"
# the config changes are stored asynchronously: wait until the API lists both
# (a deadline of a minute, not a number of tries: the writer and each try's curl are slower on
# a loaded machine running a sanitizer build)
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    [[ "$(curl -s "$A/v1/events?type=config_updated" | jq .count)" == 2 ]] && break
    sleep 0.05 # polling the server's asynchronous event writer, not ordering our own steps
done
[[ "$(curl -s "$A/v1/events?type=config_updated" | jq .count)" == 2 ]] || fail "config_updated events not stored"

# --- the page over plain HTTP: same token rules as the API
[[ "$(curl -s -o "$TMP/page.html" -w '%{http_code} %{content_type}' "$A/")" == "200 text/html; charset=utf-8" ]] || fail "GET / is not the HTML page"
grep -q '<title>fdn status</title>' "$TMP/page.html" || fail "GET / is not the status page"
if grep -Eqi '(src|href)="(https?:)?//' "$TMP/page.html"; then fail "the page loads an external asset"; fi
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TPORT/")" == 401 ]] || fail "GET / without the token should be 401"
[[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$TMP/token")" "http://127.0.0.1:$TPORT/")" == 200 ]] ||
    fail "GET / with the token should be 200"
echo "ok: GET / serves the page; 401 without the token where one is set"

# --- chromedriver + headless chromium
# (TMPDIR: Chromium makes a directory of its own there, /tmp/org.chromium.Chromium.* otherwise,
# which it leaves behind: one per run)
mkdir -p "$TMP/browser-tmp"
# In a session of its own (a background job of this non-interactive shell is no process group
# leader, so setsid does not fork: $! is chromedriver's pid, the id of its new group), which the
# browser it starts and all of the browser's processes join: cleanup kills that group.
cd_launch() {
    TMPDIR="$TMP/browser-tmp" setsid chromedriver --port="$1" >>"$TMP/chromedriver.log" 2>&1 &
    CDPID=$!
    LISTEN_PID=$CDPID
}
cd_ready() { curl -sf --max-time 10 "http://127.0.0.1:$1/status" | jq -e '.value.ready' >/dev/null; }
listen_start cd_launch cd_ready || fail "chromedriver did not start: $(tail -5 "$TMP/chromedriver.log")"
CDPORT=$LISTEN_PORT
export CD="http://127.0.0.1:$CDPORT" MAIN="$A" FIXED_WINDOW SLIDING_WINDOW TOKPORT="$TPORT" HELPPORT="$HPORT" ART TMP
# (in the background, waited for: a signal to this shell runs its trap at once, not only once
# the Python part has ended)
python3 - <<'EOF' &
import atexit, base64, json, os, signal, sys, time, urllib.request, urllib.error

CD, MAIN, ART = os.environ["CD"], os.environ["MAIN"], os.environ["ART"]
# limiter windows that do not end during the test (see the shell part)
FIXED_WINDOW, SLIDING_WINDOW = int(os.environ["FIXED_WINDOW"]), int(os.environ["SLIDING_WINDOW"])
TOKEN = open(os.path.join(os.environ["TMP"], "token")).read().strip()
# SIGTERM (the shell's cleanup, a signal to the test) ends the script through atexit too
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

def http_status(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw)

def http(method, url, body=None, headers=None):
    return http_status(method, url, body, headers)[1]

def api(path, base=MAIN, headers=None):
    return http("GET", base + path, headers=headers)

def wd(method, path, body=None):
    status, r = http_status(method, CD + path, body)
    if status != 200:
        raise RuntimeError(f"webdriver {path}: HTTP {status}: {str(r)[:400]}")
    return r["value"]

def poll(what, fn, timeout=60):
    """Wait until fn() returns something true, polling something asynchronous (the page's own
    fetch loop, chromedriver's start-up) every 0.1 s until a deadline `timeout` seconds away on
    the monotonic clock. A deadline, not a number of tries: on a loaded machine running a
    sanitizer build each try (a WebDriver round trip, a script in the page) and each refresh of
    the page take longer, so a count of tries bounds no particular time. The minute only
    catches a hang: the wait ends as soon as fn() holds. fn() runs at least once."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except RuntimeError:
            raise
        except Exception as e:  # the DOM may be between two renders
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timeout ({timeout} s): {what}; last: {last!r}")
        time.sleep(0.1)  # polling the page's refreshes, not ordering the test's own steps

failures = []
def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)

# chromedriver up
poll("chromedriver ready", lambda: http("GET", CD + "/status")["value"]["ready"])
caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium",
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1400,1300", "--hide-scrollbars"]}}}}
sid = wd("POST", "/session", caps)["sessionId"]
S = f"/session/{sid}"

def quit_browser():
    """End the WebDriver session (chromedriver closes the browser) on every way out of this
    script: a failed check, an exception, SIGTERM or SIGINT. The shell's EXIT trap kills the
    browser's process group in any case; this is the orderly way."""
    try:
        urllib.request.urlopen(urllib.request.Request(CD + S, method="DELETE"), timeout=10).read()
    except Exception:
        pass

atexit.register(quit_browser)
js = lambda script, *args: wd("POST", S + "/execute/sync", {"script": script, "args": list(args)})
refreshes = lambda: int(js("return document.body.dataset.refreshes || '0';"))

def load(url):
    wd("POST", S + "/url", {"url": url})
    poll("first refresh of " + url, lambda: refreshes() >= 1)

def settle():
    """Wait for two full refreshes that started after this call: the DOM then shows the
    state the server had after it (nothing changes it meanwhile)."""
    n = refreshes()
    poll("two more refreshes", lambda: refreshes() >= n + 2)

def shot(name):
    png = base64.b64decode(wd("GET", S + "/screenshot"))
    path = os.path.join(ART, name)
    open(path, "wb").write(png)
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, f"screenshot {name} is not a PNG")
    print("artifact:", path)

DOM = r"""
const t = (id) => document.getElementById(id).textContent;
const rows = (id, key) => Array.from(document.getElementById(id).querySelectorAll('tr[data-' + key + ']'));
const cells = (tr) => Array.from(tr.children).map((td) => td.textContent);
const byK = (tr) => Object.fromEntries(Array.from(tr.querySelectorAll('[data-k]')).map((td) => [td.dataset.k, td.textContent]));
return {
  status: t('rt-status'), running: t('rt-running'), services: t('rt-services'), error: t('fetch-error'),
  svc: rows('services', 'service').map((tr) => [tr.dataset.service, cells(tr)]),
  breakers: rows('breakers', 'breaker').map((tr) => [tr.dataset.breaker, byK(tr)]),
  breakersText: t('breakers'),
  pools: rows('pools', 'pool').map((tr) => [tr.dataset.pool, byK(tr)]),
  lim: {allowed: t('lim-allowed'), denied: t('lim-denied'), keys: t('lim-keys'),
        capacity: t('lim-capacity'), refused: t('lim-refused')},
  ev: {count: t('ev-count'), stored: t('ev-stored'), newest: t('ev-newest'), types: t('ev-types'),
       shown: t('ev-shown'), rate: t('ev-rate')},
  events: rows('events', 'id').map((tr) => cells(tr)),
  eventsText: t('events'),
  changes: rows('cfg-changes', 'id').map((tr) => cells(tr)),
  cfgTree: t('cfg-tree'),
  html: document.getElementById('events').innerHTML,
};
"""

def metric(text, name):
    total = None
    for line in text.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total

# ---- fdn serve
load(MAIN + "/")
settle()
d = js(DOM)
h = api("/health")
check(d["error"] == "", f"the page reports fetch errors: {d['error']}")
check(d["status"] == h["runtime"]["status"], f"runtime status {d['status']} != {h['runtime']['status']}")
check(d["running"] == str(h["runtime"]["running"]) and d["services"] == str(h["runtime"]["services"]),
      f"services running {d['running']}/{d['services']} != {h['runtime']['running']}/{h['runtime']['services']}")
svc = dict(d["svc"])
check(sorted(svc) == sorted(h["services"]), f"services {sorted(svc)} != {sorted(h['services'])}")
for name, s in h["services"].items():
    c = svc.get(name, ["", "", "", "", ""])
    check(c[1] == s["status"], f"service {name} status {c[1]} != {s['status']}")
    if "restarts" in s:
        check(c[3] == str(s["restarts"]) and c[2] == s["state"], f"service {name}: {c} vs {s}")
b = api("/v1/breakers")
pb = dict(d["breakers"])
check(sorted(pb) == sorted(x["name"] for x in b["breakers"]), f"breakers {sorted(pb)}")
for x in b["breakers"]:
    p = pb.get(x["name"], {})
    for k in ("state", "total_failures", "total_rejected", "times_opened", "tickets_outstanding"):
        check(p.get(k) == str(x[k]), f"breaker {x['name']} {k}: page {p.get(k)} api {x[k]}")
    if x["state"] == "open":  # time to half-open, shown rounded to seconds or minutes
        check(p.get("ms_until_half_open", "").endswith(("s", "min")), f"breaker {x['name']} time to half-open: {p}")
check(pb.get("db", {}).get("state") == "open" and pb.get("cache", {}).get("state") == "closed",
      f"expected db open and cache closed: {pb}")
m = api("/metrics")
for k, name in (("allowed", "fdn_rate_limiter_request_allowed_total"), ("denied", "fdn_rate_limiter_request_denied_total"),
                ("keys", "fdn_rate_limiter_keys"), ("capacity", "fdn_rate_limiter_keys_capacity"),
                ("refused", "fdn_rate_limiter_new_keys_refused_total")):
    check(float(d["lim"][k]) == metric(m, name), f"limiter {k}: page {d['lim'][k]} /metrics {metric(m, name)}")
check(d["lim"]["allowed"] == "1" and d["lim"]["denied"] == "1", f"limiter decisions {d['lim']}")
st = api("/v1/events/stats")
for k, a in (("count", "count"), ("stored", "events_stored"), ("newest", "newest_id"), ("types", "types_seen")):
    check(d["ev"][k] == str(st[a]), f"events {k}: page {d['ev'][k]} api {st[a]}")
latest = api("/v1/events?order=desc&limit=20")
check([r[0] for r in d["events"]] == [str(e["id"]) for e in latest["events"]],
      f"latest events {[r[0] for r in d['events']]} != {[e['id'] for e in latest['events']]}")
check([r[2] for r in d["events"]] == [e["type"] for e in latest["events"]], "latest event types differ")
check([r[3] for r in d["events"]] == [e.get("correlation_id") or "" for e in latest["events"]], "correlation ids differ")
check("<b>x</b>" not in d["html"] and "&lt;b&gt;x&lt;/b&gt;" in d["html"], "event data was not escaped")
ch = api("/v1/events?type=config_updated&order=desc&limit=10")
check([r[2] for r in d["changes"]] == [e["data"]["path"] for e in ch["events"]] and len(ch["events"]) == 2,
      f"config changes {d['changes']} vs {[e['data'] for e in ch['events']]}")
check([r[0] for r in d["changes"]] == [str(e["data"]["revision"]) for e in ch["events"]], "config revisions differ")
check(json.loads(d["cfgTree"]) == api("/v1/config"), "the configuration shown differs from GET /v1/config")
shot("status_page.png")

# filters: by type, then by correlation id too
def typed(sel, text):
    el = wd("POST", S + "/element", {"using": "css selector", "value": sel})
    eid = list(el.values())[0]
    wd("POST", S + f"/element/{eid}/clear", {})
    if text:
        wd("POST", S + f"/element/{eid}/value", {"text": text})

def shown_ids():
    return [r[0] for r in js(DOM)["events"]]

typed("#f-type", "user.login")
want = [str(e["id"]) for e in api("/v1/events?order=desc&limit=20&type=user.login")["events"]]
check(len(want) == 3, f"api: {want}")
poll("type filter", lambda: shown_ids() == want)
typed("#f-corr", "req-1")
want = [str(e["id"]) for e in api("/v1/events?order=desc&limit=20&type=user.login&correlation_id=req-1")["events"]]
check(len(want) == 2, f"api: {want}")
poll("type + correlation filter", lambda: shown_ids() == want)
typed("#f-type", "")
want = [str(e["id"]) for e in api("/v1/events?order=desc&limit=20&correlation_id=req-1")["events"]]
poll("correlation filter", lambda: shown_ids() == want and js(DOM)["ev"]["shown"] == str(len(want)))
typed("#f-corr", "no-such-id")
poll("empty filter result", lambda: shown_ids() == [] and "no events match" in js(DOM)["eventsText"])
typed("#f-corr", "")
print("ok: filters by type and correlation id show what the API returns")

# live update: an event appended and a breaker opened after the page loaded
new_id = str(http("POST", MAIN + "/v1/events", {"type": "live.update", "data": {}})["id"])
t2 = http("POST", MAIN + "/v1/breakers/cache/acquire")["ticket"]
http("POST", MAIN + "/v1/breakers/cache/report", {"ticket": t2, "outcome": "failure"})
http("PUT", MAIN + "/v1/breakers/cache", {"failure_threshold": 1, "recovery_time_ms": 600000})
t3 = http("POST", MAIN + "/v1/breakers/cache/acquire")["ticket"]
http("POST", MAIN + "/v1/breakers/cache/report", {"ticket": t3, "outcome": "failure"})
check(api("/v1/breakers/cache")["state"] == "open", "cache breaker did not open")
# (the breaker's transition is an event too: the newest ids are the API's newest)
poll("new event on the page", lambda: new_id in shown_ids() and
     shown_ids() == [str(e["id"]) for e in api("/v1/events?order=desc&limit=20")["events"]])
poll("cache breaker open on the page", lambda: dict(js(DOM)["breakers"]).get("cache", {}).get("state") == "open")
print("ok: the page follows the server without a reload")

# the busiest limiter keys (GET /v1/limiter/keys): the panel shows what the endpoint answers,
# most requests in the window first, and follows new checks without a reload
for _ in range(5):
    http("POST", MAIN + "/v1/limiter/check", {"key": "busy", "limit": 10, "window_ms": FIXED_WINDOW})
for _ in range(3):
    http("POST", MAIN + "/v1/limiter/check", {"identity": "tenant-7", "key": "search", "limit": 100,
                                              "window_ms": SLIDING_WINDOW, "algorithm": "sliding_window"})
top = api("/v1/limiter/keys?top=10")
check([(k["key"], k["identity"], k["count"]) for k in top["keys"]] ==
      [("busy", "", 5), ("search", "tenant-7", 3), ("k", "", 2)], f"/v1/limiter/keys: {top}")
check(top["keys"][0]["remaining"] == 5 and top["keys"][0]["rule"] ==
      {"algorithm": "fixed_window", "limit": 10, "window_ms": FIXED_WINDOW, "burst": 0}, f"busy: {top['keys'][0]}")
TOP = r"""
return Array.from(document.getElementById('lim-top').querySelectorAll('tr[data-key]')).map((tr) =>
  [tr.dataset.key, tr.dataset.identity, Object.fromEntries(Array.from(tr.querySelectorAll('[data-k]')).map((td) => [td.dataset.k, td.textContent]))]);
"""
def top_matches():
    want = [[k["key"], k["identity"], {"count": str(k["count"]), "limit": str(k["limit"]),
                                      "remaining": str(k["remaining"])}]
            for k in api("/v1/limiter/keys?top=10")["keys"]]
    got = [[k, i, {f: v.get(f) for f in ("count", "limit", "remaining")}] for k, i, v in js(TOP)]
    return got == want and len(got) == 3
poll("the busiest limiter keys on the page", top_matches)
shot("status_page_limiter.png")
print("ok: the busiest limiter keys match GET /v1/limiter/keys")

# ---- the alert target: pools, and endpoints it does not mount
if os.environ.get("HELPPORT"):
    H = "http://127.0.0.1:" + os.environ["HELPPORT"]
    load(H + "/")
    settle()
    d = js(DOM)
    pools = api("/v1/pools", H)
    pp = dict(d["pools"])
    check(sorted(pp) == sorted(x["name"] for x in pools["pools"]) and pools["count"] == 1, f"pools {pp}")
    for x in pools["pools"]:
        p = pp.get(x["name"], {})
        for k in ("in_use", "available", "waiters", "checkouts", "timeouts", "full"):
            check(p.get(k) == str(x[k]), f"pool {x['name']} {k}: page {p.get(k)} api {x[k]}")
    check(pp.get("alert-pool", {}).get("in_use") == "2" and pp["alert-pool"].get("available") == "0"
          and pp["alert-pool"].get("full") == "1",
          f"the pool's two workers are checked out: {pp}")
    check("unavailable" in d["eventsText"] and "/v1/events" in d["error"],
          f"an unmounted endpoint should show as unavailable: {d['eventsText']!r} / {d['error']!r}")
    shot("status_page_pools.png")
    print("ok: pools match the API; unmounted endpoints show as unavailable")

# ---- a server with a token: the browser sends it on every request (the page's fetches too)
wd("POST", S + "/goog/cdp/execute", {"cmd": "Network.enable", "params": {}})
wd("POST", S + "/goog/cdp/execute", {"cmd": "Network.setExtraHTTPHeaders",
                                     "params": {"headers": {"Authorization": "Bearer " + TOKEN}}})
T = "http://127.0.0.1:" + os.environ["TOKPORT"]
load(T + "/")
settle()
d = js(DOM)
h = api("/health", T, {"Authorization": "Bearer " + TOKEN})
check(d["error"] == "" and d["running"] == str(h["runtime"]["running"]),
      f"with the token the page loads its data: {d['error']!r} running {d['running']}")
print("ok: with a token the page works when the browser sends it")

if failures:
    sys.exit(1)
print("ok: the numbers on the page match the API")
EOF
PYPID=$!
rc=0
wait "$PYPID" || rc=$?
PYPID="" # reaped: its pid may be another process's from now on
((rc == 0)) || fail "status page checks (chromedriver log: $(tail -5 "$TMP/chromedriver.log"))"
echo "ok: status page in headless Chromium (screenshots in $ART)"

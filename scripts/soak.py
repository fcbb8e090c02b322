#!/usr/bin/env python3
"""Soak of `fdn serve` (scripts/soak.sh MINUTES runs it; issue 17).

The server runs with a retention that prunes (the newest 8000 events kept, pruned every
second; at most 30 s old) under a mixed wrk load (scripts/soak.lua: reads, config updates,
limiter checks, single and batched event appends, queries) while this script:
  - appends events of its own (type soak.check) one at a time and records every acknowledged
    id (201); every 2 s it queries them back: an acknowledged id that is not stored although
    it is not older than the oldest stored id (retention and deletes remove a prefix of ids)
    is MISSING (the run fails);
  - deletes old events (DELETE /v1/events?before=<newest - 3 s>) every 10 s, right after
    checking every id acknowledged so far (a delete never hides a loss);
  - samples the server's RSS, open descriptors, threads, stored and pruned events and
    database bytes every INTERVAL seconds into a CSV.
At the end (wrk ran for the whole time) it stops the server (SIGTERM: exit 0 required) and fits
a line to each sample series over the second half of the run: a series whose fitted growth
over that half exceeds its bound (below) grows without bound and fails the run (stored
events, a sawtooth, are held to the retention's cap instead: cap_check), as do a
missing event, a 5xx answer, a 4xx other than the limiter's 429, a retention or a delete that
removed nothing.

With SOAK_UNIQUE=1 (scripts/soak.sh --unique) wrk's events each have a type of their own and
its limiter checks a key and an identity of their own (60 s windows, so keys stay live), under
small caps (storage.hot.max_types 1000, infrastructure.rate_limiting.max_keys 20000; the
memory tier's max_events 1500, so types are released as their events are pruned): the
caps are reached within the first minute; their 503 refusals are counted apart (the run fails
if there are none) and the same flatness bounds apply.

usage: soak.py FDN_BINARY MINUTES OUT_DIR
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

RETENTION_S = 30
MAX_EVENTS = 8000  # the retention that prunes: at ~700 events/s here, ~11 s of them
DELETE_AGE_S = 3  # every DELETE_EVERY_S, events older than this go (the store regrows)
DELETE_EVERY_S = 10
VERIFY_WINDOW_S = 10  # ids acknowledged longer ago than this are not checked any more
UNIQUE_MAX_TYPES = 1000  # --unique: the caps (storage.hot.max_types, rate_limiting.max_keys)
UNIQUE_MAX_KEYS = 20000
UNIQUE_MAX_EVENTS = 1500  # --unique: below what the deletes leave, so the retention prunes
PRUNE_INTERVAL_MS = 1000  # storage.hot.prune_interval: the retention pass runs this often
CAP_LOOKBACK_S = 5  # events_stored: a retention pass is taken to have run within this


def fit(xs, ys):
    """Least-squares slope and intercept."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def cap_check(rows, cols, cap):
    """events_stored (the memory tier's count) against the bound its retention sets.

    The count is a sawtooth, not a trend: the checker deletes all but the newest DELETE_AGE_S
    every DELETE_EVERY_S and wrk refills the store at its own pace, so a line fitted over a
    window rises or falls with the phase of the window and by an amount proportional to the
    throughput (a loaded machine fitted +2171 on a healthy run). What can grow without bound
    is the count beyond the retention: storage.hot.max_events (cap) is applied every
    PRUNE_INTERVAL_MS, and the memory tier may hold more only of what that pass could not
    evict yet: events appended since it ran and events not yet committed to the file
    (durable_pending; memory evicts only committed events). So every sample must satisfy
        count <= cap + durable_pending + events appended over the last CAP_LOOKBACK_S
    (the appended count from the store's events_stored total; CAP_LOOKBACK_S is several
    prune intervals, so a pass delayed by scheduling is not an overflow). Stored events that
    are never released pass the cap once the store is full, whatever the throughput.
    Returns the failures and the worst margin (count minus its bound; <= 0 is within)."""
    kt, kc = cols.index("t_s"), cols.index("events_stored")
    ka, kp = cols.index("appended"), cols.index("durable_pending")
    fails, worst, j = [], None, 0
    for i, r in enumerate(rows):
        # the latest sample at least CAP_LOOKBACK_S older than this one
        while j + 1 < i and rows[j + 1][kt] <= r[kt] - CAP_LOOKBACK_S:
            j += 1
        old = rows[j]
        if old[kt] > r[kt] - CAP_LOOKBACK_S or min(r[kc], r[ka], r[kp], old[ka]) < 0:
            continue  # too early in the run, or a sample without stats
        bound = cap + r[kp] + (r[ka] - old[ka])
        margin = r[kc] - bound
        worst = margin if worst is None else max(worst, margin)
        if margin > 0:
            fails.append("events_stored over its retention cap at %.0f s: %d > %d (max_events "
                         "%d + %d not yet committed + %d appended in the last %.0f s)" %
                         (r[kt], r[kc], bound, cap, r[kp], r[ka] - old[ka], r[kt] - old[kt]))
    if worst is None:
        fails.append("events_stored: no sample to check against the retention cap")
    return fails[:5], worst if worst is not None else 0


class Client:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def req(self, method, path, body=None):
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                hdrs = {"Content-Type": "application/json"} if body is not None else {}
                self.c.request(method, path, body=body, headers=hdrs)
                r = self.c.getresponse()
                data = r.read()
                return r.status, data
            except (OSError, http.client.HTTPException):
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


class Checker(threading.Thread):
    """Appends soak.check events, verifies the acknowledged ones, deletes old events."""

    def __init__(self, port, stop_ev):
        super().__init__(daemon=True)
        self.port = port
        self.stop_ev = stop_ev
        self.lock = threading.Lock()
        self.pending = []  # (id, ack time), ascending ids
        self.acked = 0
        self.verified = 0
        self.missing = []
        self.unverified = 0
        self.pruned_unchecked = 0
        self.append_errors = 0
        self.deletes = 0
        self.removed = 0
        self.pruned_after_delete = -1  # events_pruned read just after the last delete
        self.retention_pruned = False  # events_pruned grew between two deletes
        self.errors = []

    def verify(self, c, final=False):
        now = time.monotonic()
        with self.lock:
            todo = [p for p in self.pending]
            self.pending = []
        # too old to be sure it is retained: counted, never reported missing
        keep = [p for p in todo if now - p[1] <= VERIFY_WINDOW_S]
        self.unverified += len(todo) - len(keep)
        if not keep:
            return
        want = {p[0] for p in keep}
        found = set()
        after = keep[0][0] - 1
        top = keep[-1][0]
        while after < top:
            st, data = c.req("GET", "/v1/events?type=soak.check&order=asc&limit=1000&after_id=%d"
                             % after)
            if st != 200:
                self.errors.append("query %d %r" % (st, data[:200]))
                return
            evs = json.loads(data)["events"]
            if not evs:
                break
            for e in evs:
                found.add(e["id"])
            after = evs[-1]["id"]
        lost = sorted(want - found)
        if lost:
            # pruned meanwhile (the retention removes the oldest ids), or a hole: missing
            st, data = c.req("GET", "/v1/events/stats")
            oldest = json.loads(data).get("oldest_id") or 0
            pruned = [i for i in lost if i < oldest]
            self.pruned_unchecked += len(pruned)
            lost = [i for i in lost if i >= oldest]
        self.missing += lost
        self.verified += len(found & want)

    def run(self):
        c = Client(self.port)
        last_verify = last_delete = time.monotonic()
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            body = json.dumps({"type": "soak.check", "correlation_id": "soak-check",
                               "data": {"n": i}})
            try:
                st, data = c.req("POST", "/v1/events", body)
            except (OSError, http.client.HTTPException):
                self.append_errors += 1
                continue
            if st == 201:
                with self.lock:
                    self.pending.append((json.loads(data)["id"], time.monotonic()))
                self.acked += 1
            else:
                self.append_errors += 1
            now = time.monotonic()
            try:
                if now - last_verify >= 2 or now - last_delete >= DELETE_EVERY_S:
                    last_verify = now
                    self.verify(c)
                if now - last_delete >= DELETE_EVERY_S:
                    last_delete = now
                    st, data = c.req("GET", "/v1/events/stats")
                    sj = json.loads(data)
                    newest = sj.get("newest_ts") or 0
                    # events_pruned (memory's evictions) grown since the last delete's answer:
                    # only the retention prunes between two deletes
                    if self.pruned_after_delete >= 0 and \
                            sj.get("events_pruned", -1) > self.pruned_after_delete:
                        self.retention_pruned = True
                    before = newest - DELETE_AGE_S * 10**9
                    if before > 0:
                        st, data = c.req("DELETE", "/v1/events?before=%d" % before)
                        if st != 200:
                            self.errors.append("delete %d %r" % (st, data[:200]))
                        else:
                            self.deletes += 1
                            self.removed += json.loads(data).get("removed", 0)
                            st, data = c.req("GET", "/v1/events/stats")
                            self.pruned_after_delete = json.loads(data).get("events_pruned", -1)
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.errors.append("checker: %r" % e)
            self.stop_ev.wait(0.01)
        try:
            self.verify(c, final=True)
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.errors.append("final verify: %r" % e)


def proc_sample(pid):
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds, threads


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: soak.py FDN_BINARY MINUTES OUT_DIR")
    fdn, minutes, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    secs = int(minutes * 60)
    interval = float(os.environ.get("SOAK_INTERVAL_S", "10" if minutes > 5 else "2"))
    os.makedirs(out, exist_ok=True)
    data_dir = os.path.join(out, "data")
    cfg = os.path.join(out, "soak-config.json")
    unique = os.environ.get("SOAK_UNIQUE", "0") == "1"
    conf = {"storage": {"hot": {"max_age_seconds": RETENTION_S, "max_events": MAX_EVENTS,
                                "prune_interval": PRUNE_INTERVAL_MS},
                        # the durable tier's own retention (the memory tier's only evicts)
                        "warm": {"retention": {"max_age_seconds": RETENTION_S}}}}
    if unique:
        # small caps, reached early: then memory must stay flat (unique types and keys)
        conf["storage"]["hot"]["max_types"] = UNIQUE_MAX_TYPES
        conf["storage"]["hot"]["max_events"] = UNIQUE_MAX_EVENTS
        conf["infrastructure"] = {"rate_limiting": {"max_keys": UNIQUE_MAX_KEYS}}
    with open(cfg, "w") as f:
        json.dump(conf, f)
    err = open(os.path.join(out, "server.err"), "w")
    srv = subprocess.Popen([fdn, "serve", "--config", cfg, "--data-dir", data_dir,
                            "--listen", "127.0.0.1:0", "--log-level", "warn",
                            "--slow-request-ms", "0"],
                           stdout=subprocess.PIPE, stderr=err)
    port = None
    line = srv.stdout.readline().decode()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
    if port is None:
        srv.kill()
        sys.exit("fdn serve did not start: %r\n%s" % (line, open(err.name).read()))
    print("soak: fdn serve pid %d on port %d, %d s, samples every %.0f s, output %s" %
          (srv.pid, port, secs, interval, out), flush=True)

    here = os.path.dirname(os.path.abspath(__file__))
    wrk_out = open(os.path.join(out, "wrk.txt"), "w")
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d%ds" % secs, "--timeout", "10s",
                            "-s", os.path.join(here, "soak.lua"),
                            "http://127.0.0.1:%d" % port], stdout=wrk_out, stderr=wrk_out)
    stop_ev = threading.Event()
    chk = Checker(port, stop_ev)
    chk.start()

    stats = Client(port)
    csv_path = os.path.join(out, "soak.csv")
    cols = ["t_s", "rss_kb", "fds", "threads", "events_stored", "events_pruned", "db_bytes",
            "acked", "verified", "missing", "appended", "durable_pending"]
    rows = []
    t0 = time.monotonic()
    with open(csv_path, "w") as csv:
        csv.write(",".join(cols) + "\n")
        next_t = t0
        while wrk.poll() is None:
            now = time.monotonic()
            if now >= next_t:
                next_t += interval
                rss, fds, threads = proc_sample(srv.pid)
                try:
                    st, data = stats.req("GET", "/v1/events/stats")
                    sj = json.loads(data) if st == 200 else {}
                    ev, pr = sj.get("count", -1), sj.get("events_pruned", -1)
                    ap, dp = sj.get("events_stored", -1), sj.get("durable_pending", -1)
                except (OSError, http.client.HTTPException, ValueError):
                    ev = pr = ap = dp = -1
                db = 0
                for suffix in ("", "-wal", "-shm"):
                    try:
                        db += os.path.getsize(os.path.join(data_dir, "events.db" + suffix))
                    except OSError:
                        pass
                row = [round(now - t0, 1), rss, fds, threads, ev, pr, db, chk.acked,
                       chk.verified, len(chk.missing), ap, dp]
                rows.append(row)
                csv.write(",".join(str(v) for v in row) + "\n")
                csv.flush()
            try:
                wrk.wait(timeout=max(0.05, next_t - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    stop_ev.set()
    chk.join(120)
    wrk_out.close()
    try:  # the pruned count after the checker's last delete
        st, data = stats.req("GET", "/v1/events/stats")
        final_pruned = json.loads(data).get("events_pruned", -1) if st == 200 else -1
    except (OSError, http.client.HTTPException, ValueError):
        final_pruned = -1
    srv.terminate()
    try:
        rc = srv.wait(120)
    except subprocess.TimeoutExpired:
        srv.kill()
        rc = "hung"
    err.close()

    fails = []
    wtxt = open(os.path.join(out, "wrk.txt")).read()
    m = re.search(r"soak-status 2xx=(\d+) 429=(\d+) 4xx=(\d+) 5xx=(\d+)", wtxt)
    capped = re.search(r"soak-capped 503=(\d+)", wtxt)
    reqs = re.search(r"(\d+) requests in", wtxt)
    if not m:
        fails.append("wrk did not report its statuses:\n" + wtxt)
    else:
        s2, s429, s4, s5 = (int(v) for v in m.groups())
        if s5:
            fails.append("%d answers 5xx" % s5)
        if unique and (not capped or int(capped.group(1)) == 0):
            fails.append("--unique: no cap was reached (no 503 from the type or key caps)")
        if s4:
            fails.append("%d answers 4xx other than 429" % s4)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wtxt)
    if sock and int(sock.group(1)) > 0:
        fails.append("wrk could not connect %s times" % sock.group(1))
    if rc != 0:
        fails.append("fdn serve exited %r on SIGTERM" % rc)
    if chk.missing:
        fails.append("%d acknowledged events missing: %r" % (len(chk.missing), chk.missing[:20]))
    if chk.errors:
        fails.append("checker errors: %r" % chk.errors[:5])
    if chk.acked == 0 or chk.verified == 0:
        fails.append("the checker had no event acknowledged and verified")
    # (not final_pruned against chk.removed: a delete's "removed" counts the file's events
    # too, events_pruned memory's evictions only, so the two overlap)
    if not chk.retention_pruned and not 0 <= chk.pruned_after_delete < final_pruned:
        fails.append("the retention pruned nothing (events_pruned %s, %s after the last delete)"
                     % (final_pruned, chk.pruned_after_delete))
    if chk.removed == 0:
        fails.append("the deletes removed nothing")

    # growth over the second half: the fitted line's rise across it, against a bound
    summary = []
    half = [r for r in rows if r[0] >= rows[-1][0] / 2] if rows else []
    bounds = {  # column: (absolute bound, fraction of the half's mean); None: see cap_check
        "rss_kb": (16 * 1024, 0.10),
        "fds": (8, 0.0),
        "threads": (2, 0.0),
        "events_stored": None,
        "db_bytes": (8 << 20, 0.25),
    }
    cap = UNIQUE_MAX_EVENTS if unique else MAX_EVENTS
    cap_fails, cap_worst = cap_check(rows, cols, cap)
    summary.append("| series | first | min | max | last | 2nd-half slope /min | 2nd-half rise "
                   "| bound | verdict |")
    summary.append("|---|---|---|---|---|---|---|---|---|")
    for name, bnd in bounds.items():
        k = cols.index(name)
        allv = [r[k] for r in rows]
        if len(half) < 4:
            fails.append("too few samples (%d) in the second half" % len(half))
            break
        xs = [r[0] for r in half]
        ys = [r[k] for r in half]
        slope, _ = fit(xs, ys)
        rise = slope * (xs[-1] - xs[0])
        if bnd is None:  # the stored count against the retention's cap (cap_check)
            ok = not cap_fails
            fails += cap_fails
            summary.append("| %s | %d | %d | %d | %d | %.1f | %.0f | cap %d: worst %+d | %s |" %
                           (name, allv[0], min(allv), max(allv), allv[-1], slope * 60, rise, cap,
                            cap_worst, "ok" if ok else "OVER CAP"))
            continue
        absb, frac = bnd
        bound = max(absb, frac * (sum(ys) / len(ys)))
        ok = rise <= bound
        if not ok:
            fails.append("%s grows: +%.0f over the second half (bound %.0f)" % (name, rise, bound))
        summary.append("| %s | %d | %d | %d | %d | %.1f | %.0f | %.0f | %s |" %
                       (name, allv[0], min(allv), max(allv), allv[-1], slope * 60, rise, bound,
                        "ok" if ok else "GROWS"))
    summary.append("")
    if unique:
        summary.append("unique types and keys: caps max_types %d, max_keys %d; refusals at the "
                       "caps (503): %s" % (UNIQUE_MAX_TYPES, UNIQUE_MAX_KEYS,
                                            capped.group(1) if capped else "?"))
    summary.append("samples: %d every %.0f s over %d s; wrk: %s requests (%s); checker: %d "
                   "acknowledged, %d verified, %d missing, %d pruned before checked, %d too old "
                   "to verify, %d append errors; %d deletes removed %d events; pruned in all "
                   "(retention and deletes) %s" %
                   (len(rows), interval, secs, reqs.group(1) if reqs else "?",
                    m.group(0) if m else "no statuses", chk.acked, chk.verified,
                    len(chk.missing), chk.pruned_unchecked, chk.unverified, chk.append_errors,
                    chk.deletes, chk.removed, rows[-1][5] if rows else "?"))
    text = "\n".join(summary)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    print(re.sub(r"(?s).*?(Running.*?)\s*soak-status.*", r"\1", wtxt).strip())
    if fails:
        print("SOAK FAILED:\n  " + "\n  ".join(fails))
        return 1
    print("soak: passed (CSV %s)" % csv_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

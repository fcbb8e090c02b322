#!/usr/bin/env bash
# `fdn serve` under a service manager's notification protocol (systemd Type=notify): the test
# owns NOTIFY_SOCKET (a Unix datagram socket bound by python3) and checks what arrives and in
# which order: READY=1 only after the "listening on" line is out and while /health answers
# 200 with every service running, a STATUS= line with it, WATCHDOG=1 pings when WATCHDOG_USEC
# is set, STOPPING=1 at SIGTERM as the last message (no ping after it), exit status 0. Then
# `systemd-analyze verify` on deploy/systemd/fdn.service where it can run.
# Synchronisation: blocking reads on the socket and on the server's stdout (with timeouts).
set -euo pipefail

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
SRC="${FDN_SOURCE_DIR:?FDN_SOURCE_DIR must point at the source directory}"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

if [[ "$(ldd "$FDN")" != *libsystemd* ]]; then
    echo "SKIP notify protocol: $FDN was built without libsystemd (FDN_HAVE_SYSTEMD)"
else
    FDN="$FDN" TMP="$TMP" python3 - <<'PY'
import os, socket, subprocess, sys, time, urllib.request, json, signal, select

fdn, tmp = os.environ["FDN"], os.environ["TMP"]
path = os.path.join(tmp, "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
env.pop("WATCHDOG_PID", None)
proc = subprocess.Popen([fdn, "serve", "--data-dir", os.path.join(tmp, "data"),
                         "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                        stderr=open(os.path.join(tmp, "err"), "w"), env=env)
fails = []
def fail(msg):
    fails.append(msg)
    print("FAIL:", msg, file=sys.stderr)

def recv(timeout=30.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return None

msgs = []
port = None
try:
    # 1. the first notification must be READY=1 (nothing before the server is ready)
    m = recv()
    if m is None:
        fail("no notification within 30 s")
        raise SystemExit
    msgs.append(m)
    if "READY=1" not in m.split("\n"):
        fail(f"first notification is not READY=1: {m!r}")
    # 2. the listen line was written before READY=1: it is in the pipe now (no wait needed)
    r, _, _ = select.select([proc.stdout], [], [], 0)
    line = proc.stdout.readline().decode() if r else ""
    if "listening on http://127.0.0.1:" not in line:
        fail(f"READY=1 came before the listen line (stdout: {line!r})")
    else:
        port = int(line.rsplit(":", 1)[1])
    # 3. ready means served: /health answers 200 and the runtime reports every service running
    if port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            body = json.load(resp)
            if resp.status != 200:
                fail(f"/health after READY=1: {resp.status}")
            rt = body.get("runtime", {})
            states = [s["state"] for s in body.get("services", {}).values() if "state" in s]
            if rt.get("services", 0) == 0 or rt.get("running") != rt.get("services") or \
                    any(s != "running" for s in states):
                fail(f"services not all running at READY=1: {body}")
    # 4. a STATUS= line, then watchdog pings (interval 200 ms: one every 100 ms)
    pings = 0
    status_seen = any(l.startswith("STATUS=") for l in m.split("\n"))
    deadline = time.monotonic() + 30
    while (pings < 3 or not status_seen) and time.monotonic() < deadline:
        m = recv(deadline - time.monotonic())
        if m is None:
            break
        msgs.append(m)
        pings += m.split("\n").count("WATCHDOG=1")
        status_seen = status_seen or any(l.startswith("STATUS=") for l in m.split("\n"))
    if pings < 3:
        fail(f"expected WATCHDOG=1 pings, got {msgs!r}")
    if not status_seen:
        fail(f"no STATUS= line: {msgs!r}")
    else:
        st = [l for x in msgs for l in x.split("\n") if l.startswith("STATUS=")][0]
        if "healthy" not in st or "services running" not in st:
            fail(f"unexpected status {st!r}")
    # 5. SIGTERM: STOPPING=1, and it is the last message
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    if rc != 0:
        fail(f"exit status {rc} after SIGTERM")
    tail = []
    while True:
        m = recv(0.01) if tail or rc is not None else None
        if m is None:
            break
        tail.append(m)
    lines = [l for x in tail for l in x.split("\n") if l]
    if "STOPPING=1" not in lines:
        fail(f"no STOPPING=1 after SIGTERM: {tail!r}")
    elif lines[-1] != "STOPPING=1":
        fail(f"messages after STOPPING=1: {lines!r}")
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
err = open(os.path.join(tmp, "err")).read()
if fails:
    print("stderr of fdn serve:\n" + err, file=sys.stderr)
    sys.exit(1)
print(f"notify protocol: ok ({len(msgs)} messages before SIGTERM)")
PY
fi

# Without NOTIFY_SOCKET nothing changes (no-op), tested by every other `fdn serve` test.

# --- the unit file
UNIT="$SRC/deploy/systemd/fdn.service"
[[ -f "$UNIT" ]] || { echo "FAIL: missing $UNIT" >&2; exit 1; }
grep -q '^Type=notify$' "$UNIT" || { echo "FAIL: $UNIT is not Type=notify" >&2; exit 1; }
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP systemd-analyze verify: systemd-analyze not installed"
    exit 0
fi
# verify needs the ExecStart binary to exist: the same unit pointing at this build's program
mkdir -p "$TMP/unit" "$TMP/man/man1"
# Documentation=man:fdn(1) is checked with man(1): the page from the source tree
cp "$SRC/docs/fdn.1" "$TMP/man/man1/fdn.1"
export MANPATH="$TMP/man"
sed "s|/usr/bin/fdn|$FDN|g" "$UNIT" >"$TMP/unit/fdn.service"
# any message (an unknown key, a value it ignores) fails: verify exits 0 on those
if systemd-analyze verify "$TMP/unit/fdn.service" >"$TMP/verify.out" 2>&1 &&
    [[ ! -s "$TMP/verify.out" ]]; then
    echo "systemd-analyze verify: ok"
elif grep -qiE 'Failed to (connect|initialize|create)|System has not been booted|Operation not permitted|No such file or directory.*/run/systemd' "$TMP/verify.out"; then
    echo "SKIP systemd-analyze verify cannot run in this environment: $(head -n 3 "$TMP/verify.out")"
else
    echo "FAIL: systemd-analyze verify:" >&2
    cat "$TMP/verify.out" >&2
    exit 1
fi

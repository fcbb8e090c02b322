# shellcheck shell=bash
# The process handling shared by the throwaway engine servers (scripts/etcd-server.sh,
# scripts/redis-server.sh, scripts/pg-server.sh), sourced by each. A script sets
#   SERVER_NAME   the engine's name in messages; also the command the default server_check
#                 looks for
#   SERVER_LOG    its log, relative to DIR (named when a start fails)
# defines the hooks
#   server_launch_new    start on fresh ports (server_port); 0 once it answers, having written
#                        DIR/url and whatever restart needs (its ports)
#   server_launch_again  start again on the same ports and data (restart)
# and may redefine server_check (is the engine installed?), server_prepare (once, before the
# first launch of a start), server_pid (the daemon's pid; default DIR/pid) and server_shutdown
# (a graceful stop; default SIGTERM, at least 10 s, then SIGKILL). Then it calls
# server_main "$@", which gives every script the same command line:
#   SCRIPT start DIR    start one with its files in DIR (a DIR left by an earlier run is stopped
#                       and emptied first); prints its URL and writes it to DIR/url
#   SCRIPT stop DIR     stop it and remove DIR
#   SCRIPT kill DIR     SIGKILL it (and its children), keep DIR (a crash, for chaos tests)
#   SCRIPT restart DIR  start it again on the same ports after kill
# Daemons run in a session of their own with stdin, stdout and stderr redirected, so they
# never hold the caller's pipes.

server_usage() {
    echo "usage: $0 start|stop|kill|restart DIR" >&2
    exit 2
}

# A random port below the kernel's range of ephemeral ports (ip_local_port_range, 32768-60999
# by default): 10000..32767 then. A launch on a taken one fails and the next try picks again.
# Below that range because `restart` binds the same port again after a kill: a port inside it
# can meanwhile become the local port of any process's outgoing connection (a test's client,
# wrk, another suite's), and the restart then fails with "address in use".
server_port() {
    local first=32768 rest
    read -r first rest </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    if ((first > 11024)); then
        echo $((10000 + RANDOM % (first - 10000)))
    else # an unusual range starting low: the old choice, above it
        echo $((first + 1024 + RANDOM % 20000))
    fi
}

# server_spawn LOG CMD...: CMD in a session of its own, stdio redirected (output appended to
# LOG); its pid in DIR/pid.
server_spawn() {
    local log=$1
    shift
    setsid "$@" </dev/null >>"$log" 2>&1 &
    echo $! >"$dir/pid"
}

# server_wait SECONDS CHECK...: 0 once CHECK succeeds, 1 once a deadline at least SECONDS of
# wall-clock time away has passed (bash's SECONDS counts whole seconds: one more is added so
# that the wait is never shorter than asked). CHECK runs at least once, then every 50 ms. A
# deadline, not a number of tries: on a loaded machine each CHECK (a fork, often a client
# connecting) and what it waits for (a daemon's start-up or exit) are slower, so a count of
# tries waits far longer or shorter than meant. The bound only catches a hang: the wait ends
# as soon as CHECK succeeds. Every wait of these scripts goes through here.
server_wait() {
    local secs=$1
    shift
    [[ "$secs" =~ ^[1-9][0-9]*$ ]] ||
        { echo "server_wait: SECONDS must be a positive integer, not '$secs'" >&2; exit 2; }
    local deadline=$((SECONDS + secs + 1))
    while :; do
        if "$@"; then
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.05 # polling another process (its start-up, its exit), not ordering our own steps
    done
}

# server_gone PID: 0 when no process PID is left
server_gone() {
    ! kill -0 "$1" 2>/dev/null
}

# server_ready_or_gone CHECK...: 0 when the daemon of DIR/pid has exited, or CHECK succeeds
server_ready_or_gone() {
    server_gone "$(cat "$dir/pid")" || "$@"
}

# server_wait_ready SECONDS CHECK...: 0 once CHECK succeeds (server_wait: polled until a
# deadline SECONDS away; the callers give a minute, like the tests' own polls); 1 at once when
# the daemon of DIR/pid exits (a port was taken), or once the deadline has passed (the daemon
# is then killed). CHECK runs at least once.
server_wait_ready() {
    local secs=$1
    shift
    if server_wait "$secs" server_ready_or_gone "$@"; then
        # CHECK succeeded, or the daemon exited
        server_gone "$(cat "$dir/pid")" && return 1
        return 0
    fi
    kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    return 1
}

# server_kill PID: SIGKILL PID and its children, then wait until it is gone (its ports closed;
# server_wait, a minute). No PID: nothing to do.
server_kill() {
    local pid=${1:-}
    [[ -n "$pid" ]] || return 0
    pkill -9 -P "$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
    server_wait 60 server_gone "$pid" || true
}

server_check() {
    command -v "$SERVER_NAME" >/dev/null ||
        { echo "$SERVER_NAME is not installed (scripts/deps.sh)" >&2; exit 1; }
}

server_prepare() {
    :
}

server_pid() {
    if [[ -f "$dir/pid" ]]; then cat "$dir/pid"; fi
}

server_shutdown() {
    local pid
    pid=$(server_pid)
    [[ -n "$pid" ]] || return 0
    kill -CONT "$pid" 2>/dev/null || true # a server a test paused (SIGSTOP) would not end
    kill "$pid" 2>/dev/null || true
    # its grace period: at least 10 s (server_wait), ended as soon as it has exited
    server_wait 10 server_gone "$pid" || true
    kill -9 "$pid" 2>/dev/null || true
}

server_main() {
    cmd=${1:-}
    dir=${2:-}
    [[ -n "$cmd" && -n "$dir" ]] || server_usage
    case "$cmd" in
    start)
        server_check
        if [[ -d "$dir" ]]; then
            # left by a run that was stopped before its stop fixture ran (or a repeated
            # fixture): stop what still runs there and start from an empty directory
            server_shutdown
            rm -rf "$dir"
        fi
        mkdir -p "$dir"
        server_prepare
        for _ in $(seq 1 20); do
            if server_launch_new; then
                cat "$dir/url"
                exit 0
            fi
        done
        echo "could not start $SERVER_NAME (see $dir/$SERVER_LOG)" >&2
        exit 1
        ;;
    restart)
        server_launch_again
        ;;
    kill)
        server_kill "$(server_pid)"
        ;;
    stop)
        server_shutdown
        rm -rf "$dir"
        ;;
    *)
        server_usage
        ;;
    esac
}

# shellcheck shell=bash
# A daemon a test starts on a port named on its command line (chromedriver, Prometheus),
# sourced by the test. A port the test picks and then hands to the daemon can be taken in
# between: an ephemeral one by any process's outgoing connection, any one by another test's
# daemon. So the port is picked below the ephemeral range (server_port), and a daemon that
# exits before it answers (the port was taken) is started again on another.
# shellcheck source=../../scripts/lib/server.sh
source "$FDN_SOURCE_DIR/scripts/lib/server.sh" # server_port, server_wait, server_gone

# listen_start LAUNCH READY: LAUNCH PORT starts the daemon in the background on PORT and sets
# LISTEN_PID to its pid (the caller's cleanup should know it from then on); READY PORT
# succeeds once the daemon answers there. Sets LISTEN_PORT to the port it answers on. Up to
# ten ports are tried; each try waits until the daemon answers or exits (server_wait, at most
# a minute). Returns 1, the last daemon killed, when one hangs or every try failed.
listen_start() {
    local launch=$1 ready=$2 try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        LISTEN_PORT=$(server_port)
        "$launch" "$LISTEN_PORT"
        if ! server_wait 60 listen_ready_or_gone "$ready"; then
            kill -9 "$LISTEN_PID" 2>/dev/null || true
            return 1
        fi
        server_gone "$LISTEN_PID" || return 0
        echo "note: try $try: the daemon exited before it answered on port $LISTEN_PORT" >&2
    done
    return 1
}

# listen_ready_or_gone READY: 0 when the daemon has exited or answers
listen_ready_or_gone() {
    server_gone "$LISTEN_PID" || "$1" "$LISTEN_PORT"
}

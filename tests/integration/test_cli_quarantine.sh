#!/usr/bin/env bash
# `fdn events quarantine --spool FILE` (tools/fdn/cmd_events.c) on spool files written by hand
# in the layout docs/events-postgres.md documents ("Quarantine"; the engine test
# test_events_spool_bound_pg.c runs it on a spool the store itself quarantined into): a table
# or one JSON object per line, oldest first, within --limit (a table row on one line whatever
# its message holds); a spool from before the quarantine holds none (exit 0); a file that is
# no spool, a missing file (exit 1) and a missing --spool (exit 2) are refused with a
# message.
set -euo pipefail

FDN="${FDN_BINARY_DIR:?FDN_BINARY_DIR must point at the build directory}/bin/fdn"
[[ -x "$FDN" ]] || { echo "missing $FDN" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required (scripts/deps.sh installs it)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
S="$TMP/spool.db"

sqlite3 "$S" "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL,
    bytes INTEGER NOT NULL, uids TEXT NOT NULL, body BLOB NOT NULL);"
out=$("$FDN" events quarantine --spool "$S") || fail "a spool without a quarantine: exit $?"
[[ "$out" == "no quarantined batches in $S" ]] || fail "without a quarantine: $out"

sqlite3 "$S" "CREATE TABLE quarantine (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL,
    bytes INTEGER NOT NULL, uids TEXT NOT NULL, body BLOB NOT NULL,
    quarantined_at INTEGER NOT NULL, error INTEGER NOT NULL, error_name TEXT NOT NULL,
    message TEXT NOT NULL);"
out=$("$FDN" events quarantine --spool "$S" --json)
[[ -z "$out" ]] || fail "an empty quarantine, --json: $out"
U1=00000000-0000-4000-8000-000000000001
U2=00000000-0000-4000-8000-000000000002
sqlite3 "$S" "INSERT INTO quarantine VALUES
    (7, 1, 3, '$U2', x'010203', 1765090001000, -17, 'FDN_EEXIST', 'postgres: duplicate key'),
    (3, 2, 5, '$U1$U1', x'0102030405', 1765090000123, -1020, 'FDN_ECORRUPT',
     'events spool: batch 3 is cut short');"

out=$("$FDN" events quarantine --spool "$S")
[[ "$(wc -l <<<"$out")" == 3 ]] || fail "table: $out"
head -1 <<<"$out" | grep -q '^SEQ  *QUARANTINED_AT  *ERROR  *EVENTS  *BYTES  *MESSAGE$' || fail "header: $out"
sed -n 2p <<<"$out" | grep -q '^3  *2025-12-07T06:46:40.123Z  *FDN_ECORRUPT  *2  *5  *events spool: batch 3 is cut short$' ||
    fail "first row: $out"
sed -n 3p <<<"$out" | grep -q '^7 .* FDN_EEXIST  *1  *3  *postgres: duplicate key$' || fail "second row: $out"

out=$("$FDN" events quarantine --spool "$S" --json --limit 1)
[[ "$(wc -l <<<"$out")" == 1 ]] || fail "--limit 1: $out"
[[ "$(jq -c . <<<"$out")" == "{\"seq\":3,\"quarantined_at\":\"2025-12-07T06:46:40.123Z\",\"quarantined_at_ms\":1765090000123,\"error\":-1020,\"error_name\":\"FDN_ECORRUPT\",\"events\":2,\"bytes\":5,\"message\":\"events spool: batch 3 is cut short\",\"uids\":\"$U1$U1\"}" ]] ||
    fail "--json: $out"
[[ "$(sqlite3 "$S" 'SELECT count(*) FROM quarantine')" == 2 ]] || fail "the listing changed the file"

# a message of several lines (PostgreSQL's ERROR/DETAIL) and a terminal escape: one row, one
# line, no raw control byte; --json keeps the message as it is
sqlite3 "$S" "INSERT INTO quarantine VALUES (9, 1, 3, '$U2', x'010203', 1765090002000, -22,
    'FDN_EINVAL', 'postgres: bad row' || char(10) || 'DETAIL: key' || char(9) || 'x' ||
    char(27) || '[31m');"
out=$("$FDN" events quarantine --spool "$S")
[[ "$(wc -l <<<"$out")" == 4 ]] || fail "a multi-line message broke the table: $out"
sed -n 4p <<<"$out" | grep -q '^9 .* FDN_EINVAL  *1  *3  *postgres: bad row DETAIL: key x \[31m$' ||
    fail "multi-line message row: $(sed -n 4p <<<"$out" | od -c | head -5)"
[[ "$("$FDN" events quarantine --spool "$S" --json | jq -r 'select(.seq == 9) | .message')" == \
    "$(printf 'postgres: bad row\nDETAIL: key\tx\033[31m')" ]] || fail "--json message changed"
sqlite3 "$S" "DELETE FROM quarantine WHERE seq = 9;"

rc=0
"$FDN" events quarantine --spool "$TMP/none.db" 2>"$TMP/err" || rc=$?
[[ $rc == 1 ]] && grep -q "no spool at" "$TMP/err" || fail "a missing file: exit $rc, $(cat "$TMP/err")"
[[ ! -e "$TMP/none.db" ]] || fail "a missing file was created"
echo "not sqlite" >"$TMP/text"
rc=0
"$FDN" events quarantine --spool "$TMP/text" 2>"$TMP/err" || rc=$?
[[ $rc == 1 ]] && grep -q "is not an events spool" "$TMP/err" || fail "not a spool: exit $rc, $(cat "$TMP/err")"
rc=0
"$FDN" events quarantine 2>"$TMP/err" || rc=$?
[[ $rc == 2 ]] && grep -q -- "--spool FILE is required" "$TMP/err" || fail "no --spool: exit $rc"
echo "fdn events quarantine lists the quarantine"

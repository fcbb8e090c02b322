#!/usr/bin/env bash
# Three layouts for ordered appends on PostgreSQL, with pgbench (docs/events-postgres.md, "Left"):
#   raw  the events table, positions from a sequence (no commit order)
#   cur  the backend's single statement: head UPDATE, then the INSERT, under the head row lock
#   two  wide rows into a data table keyed by UUID, then, in the same pipelined transaction, the
#        head UPDATE and narrow (position, event_id) rows into a log
# 100-row batches generated server-side (the client costs nothing), fsync off as the bench's
# cluster. Prints batches/s per layout and round, then one client's time per batch.
#   bench/pg_layouts.sh [CLIENTS] [SECONDS] [ROUNDS]     (defaults 4 8 2)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clients=${1:-4} secs=${2:-8} rounds=${3:-2}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgbench=$bindir/pgbench psql=$bindir/psql
work=$(mktemp -d /tmp/fdn_pg_layouts_XXXXXX)
chmod 755 "$work" # the cluster runs as postgres when we are root
trap 'bash "$here/scripts/pg-server.sh" stop "$work/c" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$(bash "$here/scripts/pg-server.sh" start "$work/c" | tail -n 1)

cols="type, correlation_id, parent, ts, wall_ns, node, pid, tid, ctype, data"
vals="'bench.type', 'corr-' || (:bk % 1000 + g), 0, 1, 2, 'node-a', 1, 2, 0,
 decode(repeat('7b2278223a3132337d', 12), 'hex')"
wide="type text NOT NULL, correlation_id text NOT NULL, parent bigint NOT NULL,
 ts bigint NOT NULL, wall_ns bigint NOT NULL, node text NOT NULL, pid bigint NOT NULL,
 tid bigint NOT NULL, ctype smallint NOT NULL, data bytea NOT NULL,
 committed_at timestamptz NOT NULL DEFAULT now()"
"$psql" -q "$url" <<SQL
CREATE SCHEMA r; CREATE SCHEMA c; CREATE SCHEMA t;
CREATE SEQUENCE r.seq;
CREATE TABLE r.events (position bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE, $wide);
CREATE INDEX ON r.events (type, position); CREATE INDEX ON r.events (correlation_id, position);
CREATE INDEX ON r.events (wall_ns);
CREATE TABLE c.head (id smallint PRIMARY KEY, position bigint NOT NULL);
INSERT INTO c.head VALUES (1, 0);
CREATE TABLE c.events (LIKE r.events INCLUDING ALL);
CREATE TABLE t.head (LIKE c.head INCLUDING ALL); INSERT INTO t.head VALUES (1, 0);
CREATE TABLE t.data (event_id uuid PRIMARY KEY, $wide);
CREATE INDEX ON t.data (type); CREATE INDEX ON t.data (correlation_id); CREATE INDEX ON t.data (wall_ns);
CREATE TABLE t.log (position bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE);
SQL
# each batch's ids: md5 of a random key and the row number (a rare repeated key is skipped)
id="md5(:bk::text || '-' || g)::uuid"
cat > "$work/raw.sql" <<SQL
\set bk random(1, 2000000000)
INSERT INTO r.events (position, event_id, $cols) SELECT nextval('r.seq'), $id, $vals
 FROM generate_series(1, 100) g ON CONFLICT DO NOTHING;
SQL
cat > "$work/cur.sql" <<SQL
\set bk random(1, 2000000000)
WITH h AS (UPDATE c.head SET position = position + 100 WHERE id = 1 RETURNING position - 100 AS b)
INSERT INTO c.events (position, event_id, $cols) SELECT h.b + g, $id, $vals
 FROM h, generate_series(1, 100) g;
SQL
cat > "$work/two.sql" <<SQL
\set bk random(1, 2000000000)
\startpipeline
BEGIN;
INSERT INTO t.data (event_id, $cols) SELECT $id, $vals FROM generate_series(1, 100) g
 ON CONFLICT DO NOTHING;
WITH h AS (UPDATE t.head SET position = position + 100 WHERE id = 1 RETURNING position - 100 AS b)
INSERT INTO t.log (position, event_id) SELECT h.b + g, $id FROM h, generate_series(1, 100) g
 ON CONFLICT DO NOTHING;
COMMIT;
\endpipeline
SQL
tps() { "$pgbench" -n -M prepared -c "$1" -j 2 -T "$2" -f "$work/$3.sql" "$url" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
for ((r = 1; r <= rounds; r++)); do
    for v in raw cur two; do printf 'round %d %-4s %s batches/s (%d clients)\n' "$r" "$v" "$(tps "$clients" "$secs" "$v")" "$clients"; done
done
for v in raw cur two; do
    t=$(tps 1 "$secs" "$v")
    awk -v v="$v" -v t="$t" 'BEGIN { printf "one client %-4s %.2f ms per batch\n", v, 1000 / t }'
done

#!/usr/bin/env bash
# The PostgreSQL key of mirror_transactions (schema 8), measured: the same rows upserted into
# the version-7 table (`id` key, indexes on (user_id, id), (account_id, date_ms),
# connection_id and the tombstones) and into the version-8 one (key `(user_id, id)`, the
# other three indexes), one after the other and twice, 5,000 rows per statement with the
# mirror's conflict rule, as a backfill writes them (one user's rows after another's).
# The rows come from an unlogged staging table inside the server, so the figure is the
# table's and its indexes', not a client's.
#
#   bench/pg_key.sh [ROWS]        # default 550000 (100 users of 5,500)
#
# MONEYHUB_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test); works in the schema
# mirror_key_bench, dropped at the end.
set -euo pipefail
ROWS=${1:-550000}
URL=${MONEYHUB_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
COLUMNS="id TEXT NOT NULL, user_id TEXT NOT NULL, account_id TEXT, connection_id TEXT, date_ms BIGINT NOT NULL,
  modified_ms BIGINT NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, raw TEXT NOT NULL,
  updated_ms BIGINT NOT NULL"
psql -qX -v ON_ERROR_STOP=1 "$URL" >/dev/null <<SQL
DROP SCHEMA IF EXISTS mirror_key_bench CASCADE;
CREATE SCHEMA mirror_key_bench;
SET search_path = mirror_key_bench;
CREATE UNLOGGED TABLE stage AS
  SELECT gen_random_uuid()::TEXT AS id, 'user' || lpad((g / 5500)::TEXT, 20, '0') AS user_id,
         md5((g / 1834)::TEXT) AS account_id, md5((g / 5500)::TEXT) AS connection_id,
         1700000000000 + g * 1000::BIGINT AS date_ms, 1700000000000::BIGINT AS modified_ms, 'posted' AS status,
         '{"amount":{"value":-1234,"currency":"GBP"},"categoryId":"std:4b0255f0-0309-4509-9e05-4b4e386f9b0d",'
           || '"longDescription":"CARD PAYMENT TO SAINSBURYS S/MKTS CAMDEN","shortDescription":"Sainsbury''s",'
           || '"status":"posted","id":"' || g || '"}' AS raw, g
  FROM generate_series(0, $ROWS - 1) AS g;
CREATE INDEX ON stage (g);
CREATE TABLE v7_id_key ($COLUMNS, PRIMARY KEY (id));
CREATE INDEX ON v7_id_key (user_id, id);
CREATE INDEX ON v7_id_key (account_id, date_ms);
CREATE INDEX ON v7_id_key (connection_id);
CREATE INDEX ON v7_id_key (user_id) WHERE deleted <> 0;
CREATE TABLE v8_user_key ($COLUMNS, PRIMARY KEY (user_id, id));
CREATE INDEX ON v8_user_key (account_id, date_ms);
CREATE INDEX ON v8_user_key (connection_id);
CREATE INDEX ON v8_user_key (user_id) WHERE deleted <> 0;
SQL
psql -qX "$URL" -c "VACUUM ANALYZE mirror_key_bench.stage" >/dev/null
run() {
  local table=$1 key=$2 lo=0 start end
  psql -qX "$URL" -c "TRUNCATE mirror_key_bench.$table; CHECKPOINT" >/dev/null
  start=$(date +%s.%N)
  while ((lo < ROWS)); do
    echo "INSERT INTO $table (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
      SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, 0, raw, 1 FROM stage
      WHERE g >= $lo AND g < $((lo + 5000))
      ON CONFLICT $key DO UPDATE SET raw = excluded.raw, modified_ms = excluded.modified_ms
      WHERE excluded.modified_ms > $table.modified_ms;"
    lo=$((lo + 5000))
  done | psql -qX -v ON_ERROR_STOP=1 "$URL" -c "SET search_path = mirror_key_bench" -f - >/dev/null
  end=$(date +%s.%N)
  printf '%-12s %8.0f rows/s\n' "$table" "$(echo "$ROWS / ($end - $start)" | bc -l)"
}
echo "PostgreSQL key of mirror_transactions: $ROWS rows, 5,000 per upsert, $(nproc) cores"
for _ in 1 2; do
  run v7_id_key "(id)"
  run v8_user_key "(user_id, id)"
done
psql -qX "$URL" -c "DROP SCHEMA mirror_key_bench CASCADE" >/dev/null

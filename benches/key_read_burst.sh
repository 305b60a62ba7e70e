#!/bin/bash
# GET /api/v1/keys/{id} on one key against a PostgreSQL server: wrk -t2 -c50, 4 runs of
# 10 s, each run's p99 and req/s, then the database reads the key-read cache made.
# Usage: benches/key_read_burst.sh BIN [FRESH_MS]   (needs wrk, psql, python3 requests;
# PostgreSQL at 127.0.0.1:5432, user postgres). FRESH_MS: LATCHKEY_KEY_READ_FRESH_MS.
set -e
BIN=$1; FRESH=${2:-1000}; HERE=$(dirname "$0"); WORK=$(mktemp -d)
DB=latchkey_burst_$RANDOM
psql -h 127.0.0.1 -U postgres -qc "create database $DB" >/dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB LATCHKEY_LOG=warn \
  LATCHKEY_ADMIN_PASSWORD=profile-admin-password-long LATCHKEY_BIND=127.0.0.1:18383 \
  LATCHKEY_KEY_READ_FRESH_MS=$FRESH
$BIN > $WORK/server.log 2>&1 & P=$!
trap 'kill $P 2>/dev/null; wait $P 2>/dev/null; psql -h 127.0.0.1 -U postgres -qc "drop database $DB" >/dev/null; rm -rf $WORK' EXIT
sleep 2
python3 "$HERE/callgrind/setup.py" http://127.0.0.1:18383 > $WORK/keys.json
READER=$(python3 -c "import json;print(json.load(open('$WORK/keys.json'))['reader'])")
TID=$(python3 -c "import json;print(json.load(open('$WORK/keys.json'))['target_id'])")
echo "wrk.headers[\"Authorization\"] = \"Bearer $READER\"" > $WORK/get.lua
for i in 1 2 3 4; do
  wrk -t2 -c50 -d10s --latency -s $WORK/get.lua http://127.0.0.1:18383/api/v1/keys/$TID \
    | grep -E "Requests/sec|  99%|Non-2xx" | tr -s ' \n' ' '; echo
done
curl -s http://127.0.0.1:18383/metrics | grep '^latchkey_key_read_cache_lookups_total'

#!/bin/bash
# Counts instructions per request of each API arm with callgrind.
# Usage: benches/callgrind/run.sh BIN OUTDIR [SECONDS]   (needs valgrind, wrk, python3 requests)
# Starts BIN on a fresh SQLite file with one worker, makes a channel and three keys through the
# dashboard (setup.py), restarts it under callgrind and, per arm, zeroes the counters, runs
# wrk -t1 -c4 for SECONDS, dumps, and prints the instructions per request.
set -e
BIN=$1; OUT=$2; SECS=${3:-6}
mkdir -p $OUT; rm -f $OUT/*
DB=$OUT/prof.db
export DATABASE_URL=sqlite://$DB LATCHKEY_ADMIN_PASSWORD=profile-admin-password-long LATCHKEY_LOG=warn LATCHKEY_WORKERS=1 LATCHKEY_BIND=127.0.0.1:18181
$BIN > $OUT/setup.log 2>&1 & P=$!
sleep 1.5
python3 "$(dirname "$0")/setup.py" http://127.0.0.1:18181 > $OUT/keys.json
kill $P; wait $P 2>/dev/null || true
CALLER=$(python3 -c "import json;print(json.load(open('$OUT/keys.json'))['caller'])")
TARGET=$(python3 -c "import json;print(json.load(open('$OUT/keys.json'))['target'])")
LIMITED=$(python3 -c "import json;print(json.load(open('$OUT/keys.json'))['limited'])")
READER=$(python3 -c "import json;print(json.load(open('$OUT/keys.json'))['reader'])")
TID=$(python3 -c "import json;print(json.load(open('$OUT/keys.json'))['target_id'])")
MALFORMED="${TARGET:0:63}x"
UNKNOWN=$(python3 - <<PY
t="$TARGET"; print(t[:20] + ("A" if t[20]!="A" else "B") + t[21:])
PY
)
cat > $OUT/verify.lua <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $CALLER"
wrk.body = '{"key":"' .. os.getenv("K") .. '"}'
LUA
cat > $OUT/get.lua <<LUA
wrk.headers["Authorization"] = "Bearer " .. os.getenv("K")
LUA
valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p.out --dump-instr=no --collect-atstart=yes $BIN > $OUT/server.log 2>&1 & VP=$!
sleep 6
arm() { # name url script key
  curl -s -o /dev/null http://127.0.0.1:18181/healthz
  callgrind_control -z $VP >/dev/null
  K=$4 wrk -t1 -c4 -d${SECS}s -s $3 $2 > $OUT/$1.wrk
  callgrind_control -d $1 $VP >/dev/null
  sleep 0.5
  N=$(grep -oP '^\s*\K\d+(?= requests in)' $OUT/$1.wrk)
  F=$(ls -t $OUT/cg.*.out.* | head -1)
  IR=$(grep -m1 -oP '^(summary|totals): \K\d+' $F)
  echo "$1 requests=$N Ir=$IR per_request=$((IR / N))"
}
echo 'wrk.method="GET"' > $OUT/plain.lua
arm ping http://127.0.0.1:18181/api/v1/ping $OUT/plain.lua x
arm valid http://127.0.0.1:18181/api/v1/keys/verify $OUT/verify.lua $TARGET
arm limited http://127.0.0.1:18181/api/v1/keys/verify $OUT/verify.lua $LIMITED
arm malformed http://127.0.0.1:18181/api/v1/keys/verify $OUT/verify.lua $MALFORMED
arm unknown http://127.0.0.1:18181/api/v1/keys/verify $OUT/verify.lua $UNKNOWN
arm badbearer http://127.0.0.1:18181/api/v1/keys/$TID $OUT/get.lua lk_notakeyatall_but_as_long_as_one_is_or_close_to_it_xxxxxxxxxxx
arm getkey http://127.0.0.1:18181/api/v1/keys/$TID $OUT/get.lua $READER
kill $VP; wait $VP 2>/dev/null || true

#!/usr/bin/env bash
# Measures what scaling Baton out costs, side by side on this machine: one gateway against two gateways behind
# HAProxy, both stacks on the same shared tiers (one Redis, one PostgreSQL journal server; a database and a Redis key
# prefix per stack, so the stacks never see each other's sessions or pin notices) and three demo backends each:
#   one: a single gateway, wrk straight at it
#   two: two gateways behind HAProxy (mode tcp, balance roundrobin, health check GET /_baton/ready), wrk at HAProxy
# for
#   (a) GET /counter          — a request that changes nothing
#   (b) POST /blob?bytes=1024 — a request that changes 1 KiB of state
# in interleaved rounds, then the median of the rounds. Per run: req/s, p50, p99, CPU µs per request of each gateway
# (per instance and summed), of HAProxy, Redis, PostgreSQL (postmaster and its backends) and the backends, each
# gateway's share of the requests (from its own request metrics), and Redis commands per request (INFO commandstats
# deltas, INFO itself left out) with PUBLISH and SUBSCRIBE apart: what the gateways' cache coherence (pin notices
# over pub/sub, lookups of sessions another gateway served) costs in Redis.
# Sessions: every request takes the next of the thread's session cookies, whichever of its connections is free, so a
# session's requests are not tied to one connection; HAProxy spreads the connections over the two gateways, so in
# stack "two" a session's requests go through both gateways (not alternating strictly, but mixed), never sticky.
# Everything runs on loopback; needs wrk, haproxy, redis-server and PostgreSQL (initdb, postgres, psql).
# Usage: [ROUNDS=3] [WARMUP_SECONDS=8] scripts/bench-scale-out.sh [seconds] [connections]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
seconds=${1:-10}
connections=${2:-32}
rounds=${ROUNDS:-3}
# Twice as many sessions as connections, so requests of one session rarely overlap.
sessions=$(( connections * 2 > 64 ? connections * 2 : 64 ))
work=$(mktemp -d)
# The backends watch their content root for config changes (inotify): keep everything else out of it.
mkdir -p "$work/content"
pids=()
cleanup() {
  # PostgreSQL's fast shutdown (SIGINT) also returns its shared memory.
  [ -s "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -n 1 "$work/pg/data/postmaster.pid")" 2>/dev/null
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_WORK:-}" ] && cp -r "$work" /tmp/bench-work; rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Only what runs here: the gateway and the demo backend.
for project in src/Gateway src/DemoBackend; do dotnet build "$project" -c Release --nologo -v quiet >/dev/null; done
gateway=src/Gateway/bin/Release/net10.0/Baton.Gateway.dll
backend=src/DemoBackend/bin/Release/net10.0/Baton.DemoBackend.dll
secret=bench-secret-0123456789abcdef0123456789abcdef
quiet=(--Logging:LogLevel:Default=Warning --Logging:LogLevel:Microsoft.AspNetCore=Warning --Logging:LogLevel:Yarp=Warning)
redis_port=6779
pg_port=6790
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)

redis-server --port $redis_port --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
redis_pid=$!

# PostgreSQL refuses to run as root: its folder and processes belong to the postgres user then.
bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
mkdir -p "$work/pg"
as_pg=()
if ((EUID == 0)); then chown postgres "$work" "$work/pg"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$bin/initdb" -D "$work/pg/data" -A trust -U baton -E UTF8 --no-locale >/dev/null
"${as_pg[@]}" "$bin/postgres" -D "$work/pg/data" -k "$work/pg" -h 127.0.0.1 -p $pg_port -c shared_buffers=128MB >"$work/pg.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/pg/data/postmaster.pid" ] && (echo >/dev/tcp/127.0.0.1/$pg_port) 2>/dev/null && break; sleep 0.2; done
for _ in $(seq 1 50); do psql -h 127.0.0.1 -p $pg_port -U baton -d postgres -qAtc "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
# One database per stack on the one server.
psql -h 127.0.0.1 -p $pg_port -U baton -d postgres -qc "CREATE DATABASE one" -c "CREATE DATABASE two" >/dev/null
for _ in $(seq 1 50); do redis-cli -p $redis_port PING >/dev/null 2>&1 && break; sleep 0.2; done

# The database server's processes (the postmaster and its backends), for their CPU.
db_pids() { local pm; pm=$(head -n 1 "$work/pg/data/postmaster.pid"); echo "$pm" $(pgrep -P "$pm"); }

declare -A backend_pids stack_port stack_gateways
declare -A gateway_pid gateway_port
haproxy_pid=
haproxy_stats=6979

start_backends() { # stack backendBase
  for i in 1 2 3; do
    dotnet "$backend" --contentRoot "$work/content" --urls "http://127.0.0.1:$(($2 + i))" --Demo:InstanceId="b$i" \
      --Demo:SessionStore=Baton --Baton:Secret="$secret" "${quiet[@]}" >"$work/$1-b$i.log" 2>&1 &
    pids+=($!)
    backend_pids[$1]="${backend_pids[$1]:-} $!"
  done
}

start_gateway() { # stack name port backendBase
  local stack=$1 name=$2 port=$3 base=$4
  dotnet "$gateway" --urls "http://127.0.0.1:$port" --Baton:Secret="$secret" \
    --Baton:Store:Redis=127.0.0.1:$redis_port --Baton:Store:RedisKeyPrefix="$stack:" \
    --Baton:Journal:Provider=PostgreSql "--Baton:Journal:ConnectionString=Host=127.0.0.1;Port=$pg_port;Username=baton;Database=$stack" \
    --ReverseProxy:Clusters:demo:SessionAffinity:Policy=Baton \
    $(for i in 1 2 3; do echo "--ReverseProxy:Clusters:demo:Destinations:b$i:Address=http://127.0.0.1:$((base + i))"; done) \
    "${quiet[@]}" >"$work/$name.log" 2>&1 &
  pids+=($!)
  gateway_pid[$name]=$!
  gateway_port[$name]=$port
  stack_gateways[$stack]="${stack_gateways[$stack]:-} $name"
  # One at a time: the first creates the journal's tables.
  for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$port/_baton/ready" && return 0; sleep 0.2; done
  echo "gateway $name did not get ready; its log:" >&2; tail -n 30 "$work/$name.log" >&2; exit 1
}

start_haproxy() { # port gatewayPorts...
  local port=$1; shift
  {
    cat <<CFG
global
    nbthread 1
    maxconn 4096

defaults
    mode tcp
    timeout connect 1s
    timeout client 5m
    timeout server 5m
    timeout check 1s
    retries 3
    option redispatch 1

frontend edge
    bind 127.0.0.1:$port
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /_baton/ready
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2
CFG
    local i=0 p
    for p in "$@"; do i=$((i + 1)); echo "    server g$i 127.0.0.1:$p check"; done
    cat <<CFG

listen stats
    mode http
    bind 127.0.0.1:$haproxy_stats
    timeout client 5s
    stats enable
    stats uri /
CFG
  } >"$work/haproxy.cfg"
  "$haproxy" -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
  pids+=($!)
  haproxy_pid=$!
  # Ready once every gateway is UP behind it.
  for _ in $(seq 1 100); do
    [ "$(curl -sf "http://127.0.0.1:$haproxy_stats/;csv" | awk -F, '$1 == "gateways" && $2 != "BACKEND" && $18 == "UP"' | wc -l)" -eq $# ] && return 0
    sleep 0.2
  done
  echo "HAProxy did not see every gateway UP; its log:" >&2; tail -n 30 "$work/haproxy.log" >&2; exit 1
}

start_backends one 6880
start_gateway one one-g1 6890 6880
stack_port[one]=6890
make_sessions "$work/one.cookies" http://127.0.0.1:6890 $sessions

start_backends two 6980
start_gateway two two-g1 6991 6980
start_gateway two two-g2 6992 6980
start_haproxy 6990 6991 6992
stack_port[two]=6990
# Through HAProxy on new connections, so round-robin creates them on both gateways.
make_sessions "$work/two.cookies" http://127.0.0.1:6990 $sessions
stacks=(one two)

redis_calls() { # -> "command calls" lines (INFO commandstats), INFO itself left out: that is this script's
  redis-cli -p $redis_port INFO commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); if ($1 != "info") print $1, $3 }'
}

gateway_counts() { # gateway port -> "requests stored stale other skipped": the requests it answered that were not its
  # own /_baton paths, the checkpoints it took by outcome (stale: a version the tiers held already) and the Redis calls
  # it skipped or failed (over its time budget, circuit open: the journal alone served them), from its metrics
  curl -sf "http://127.0.0.1:$1/_baton/metrics" | awk '
    /^http_server_request_duration_seconds_count/ && !/_baton/ { n += $NF }
    /^baton_checkpoint_count/ && !/_bucket|_sum/ && match($0, /baton_outcome="[a-z_]+"/) {
      o = substr($0, RSTART + 15, RLENGTH - 16); if (o == "stored") st += $NF; else if (o == "stale") sl += $NF; else ot += $NF }
    /^baton_redis_unavailable/ { sk += $NF }
    END { printf "%d %d %d %d %d\n", n, st, sl, ot, sk }'
}

run() { # round stack method path
  local round=$1 stack=$2 method=$3 path=$4 port=${stack_port[$2]}
  lua "$work/$stack.cookies" "$method" "$path" >"$work/script.lua"
  local gws=(${stack_gateways[$stack]}) g
  local -A t0 m0
  for g in "${gws[@]}"; do t0[$g]=$(ticks ${gateway_pid[$g]}); m0[$g]=$(gateway_counts ${gateway_port[$g]}); done
  local h0 b0 r0 d0
  redis_calls >"$work/redis0"
  h0=$(ticks $haproxy_pid); b0=$(ticks ${backend_pids[$stack]}); r0=$(ticks $redis_pid); d0=$(ticks $(db_pids))
  local out
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/script.lua" "http://127.0.0.1:$port" 2>&1)
  local h b r d
  h=$(( $(ticks $haproxy_pid) - h0 )); b=$(( $(ticks ${backend_pids[$stack]}) - b0 )); r=$(( $(ticks $redis_pid) - r0 )); d=$(( $(ticks $(db_pids)) - d0 ))
  # Only stack two has HAProxy.
  [ "$stack" = two ] || h=0
  redis_calls >"$work/redis1"
  # Per gateway: CPU ticks and requests answered; over the gateways: checkpoints stored, stale, other.
  local gt=() gq=() now before ckpt=(0 0 0 0) i
  for g in "${gws[@]}"; do
    gt+=($(( $(ticks ${gateway_pid[$g]}) - ${t0[$g]} )))
    now=($(gateway_counts ${gateway_port[$g]})); before=(${m0[$g]})
    gq+=($(( now[0] - before[0] )))
    for i in 0 1 2 3; do ckpt[i]=$(( ckpt[i] + now[i + 1] - before[i + 1] )); done
  done
  [ ${#gws[@]} -eq 2 ] || { gt+=(0); gq+=(0); }
  local rps p50 p99 non2xx requests
  read -r rps requests p50 p99 non2xx <<<"$(wrk_figures "$out")"
  # Redis commands per request: all of them (with those its scripts run), EVALSHA (script runs), PUBLISH, SUBSCRIBE,
  # and each command's own.
  local redis
  redis=$(awk -v n="$requests" 'NR == FNR { before[$1] = $2; next }
    { d = $2 - before[$1]; if (d <= 0) next; all += d; if ($1 ~ /^eval/) ev += d; if ($1 == "publish") pub = d
      if ($1 == "subscribe" || $1 == "psubscribe" || $1 == "ssubscribe") subs += d; each = each sprintf(" %s=%.4f", $1, d / n) }
    END { printf "%f %f %f %f|%s", all / n, ev / n, pub / n, subs / n, each }' "$work/redis0" "$work/redis1")
  # One line of numbers per run (CPU in µs per request from clock ticks of 10 ms), for the table and the medians.
  awk -v stack="$stack" -v req="$method $path" -v round="$round" -v rps="$rps" -v p50="$(ms "$p50")" -v p99="$(ms "$p99")" -v bad="${non2xx:-0}" \
    -v n="$requests" -v g1="${gt[0]}" -v g2="${gt[1]}" -v q1="${gq[0]}" -v q2="${gq[1]}" -v h="$h" -v r="$r" -v d="$d" -v b="$b" -v redis="${redis%%|*}" \
    -v stored="${ckpt[0]}" -v stale="${ckpt[1]}" -v other="${ckpt[2]}" -v skipped="${ckpt[3]}" \
    'BEGIN {
      split(redis, rc, " "); u = 10000 / n
      printf "%s|%s|%s|%f|%f|%f|%d|%f|%f|%f|%f|%f|%f|%f|%f|%s|%s|%s|%s|%f|%f|%f|%f|%f\n", stack, req, round, rps, p50, p99, bad,
        g1 * u, g2 * u, (g1 + g2) * u, h * u, r * u, d * u, b * u, (g1 + g2 + h + r + d + b) * u, rc[1], rc[2], rc[3], rc[4],
        skipped / n, stored / n, stale / n, other / n, (q1 + q2 ? 100 * q1 / (q1 + q2) : 100)
    }' | tee -a "$work/results" | row
  echo "$stack|$method $path|$round|${redis#*|}" >>"$work/redis-each"
}

ms() { # wrk's latency (123.45us, 1.23ms, 1.02s) -> milliseconds
  awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v *= 1; else if (t ~ /s$/) v *= 1000; printf "%.3f", v }'
}

header() {
  printf '%-5s %-11s %-6s %6s %6s %6s %4s | %5s %5s %5s %5s %5s %5s %5s %5s | %6s %5s %6s %6s %5s | %5s %5s %5s | %4s\n' \
    stack request round "req/s" p50ms p99ms !2xx gw1 gw2 gwsum haprx redis pg bknds total cmds eval publsh subscr rskip stord stale other "g1%"
}
row() { # a results line -> a table row
  awk -F'|' '{ r = $2; sub(/\/blob\?bytes=1024/, "1KiB", r); sub(/\/counter/, "counter", r); two = $1 != "one"
    printf "%-5s %-11s %-6s %6.0f %6.2f %6.2f %4d | %5.0f %5s %5.0f %5s %5.0f %5.0f %5.0f %5.0f | %6.2f %5.2f %6.4f %6.4f %5.3f | %5.2f %5.2f %5.2f | %4.0f\n",
      $1, r, $3, $4, $5, $6, $7, $8, (two ? sprintf("%.0f", $9) : "-"), $10, (two ? sprintf("%.0f", $11) : "-"), $12, $13, $14, $15,
      $16, $17, $18, $19, $20, $21, $22, $23, $24 }'
}

# Warm every stack up (JIT, connection pools, every gateway meeting every session) before anything is measured.
for stack in "${stacks[@]}"; do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    lua "$work/$stack.cookies" $request >"$work/script.lua"
    wrk -t2 -c"$connections" -d"${WARMUP_SECONDS:-8}s" -s "$work/script.lua" "http://127.0.0.1:${stack_port[$stack]}" >/dev/null 2>&1
  done
done

echo "Baton scale-out: stack one = 1 gateway (wrk straight at it); stack two = 2 gateways behind HAProxy (tcp, roundrobin)."
echo "Shared: one Redis, one PostgreSQL $("$bin/postgres" --version | awk '{ print $3 }') journal server (a database each); 3 backends per stack. ${seconds}s per run, $connections connections, $sessions sessions, $rounds rounds."
echo "Sessions: each request takes the next session cookie of its wrk thread on whichever connection is free, so in stack two a"
echo "session's requests go through both gateways (mixed, not strictly alternating; per-connection stickiness is NOT what is measured)."
echo "CPU µs per request (of all the stack's requests), per process: gw1, gw2, gwsum (both gateways), haprx (HAProxy), redis, pg"
echo "  (postmaster and its backends), bknds (the 3 backends), total (all of these; wrk not counted)."
echo "Redis per request (INFO commandstats deltas, INFO itself left out): cmds = every command Redis ran, the ones its Lua scripts"
echo "  run included; eval = script runs (EVALSHA); publsh = PUBLISH (pin notices); subscr = SUBSCRIBE; rskip = Redis calls the
  gateways skipped or failed (over Baton:Store:RedisBudget, circuit open: the journal alone served those), their metrics."
echo "Checkpoints per request, both gateways (their metrics): stord = stored, stale = a version the tiers held already, other ="
echo "  fenced/diverged/rejected/failed. g1% = gateway 1's share of the requests (its request metrics)."
echo
header
for round in $(seq 1 "$rounds"); do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    for stack in "${stacks[@]}"; do
      run "#$round" "$stack" $request
    done
  done
done

echo
echo "median of $rounds rounds (each column on its own)"
header
awk -F'|' '{ key = $1 "|" $2; if (!(key in n)) order[++k] = key; i = ++n[key]; for (c = 4; c <= NF; c++) v[key, c, i] = $c; nf = NF }
  END {
    for (j = 1; j <= k; j++) {
      key = order[j]; line = key "|median"
      for (c = 4; c <= nf; c++) {
        m = n[key]; delete a; for (i = 1; i <= m; i++) a[i] = v[key, c, i] + 0; asort(a)
        line = line "|" (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2)
      }
      print line
    }
  }' "$work/results" | row

echo
echo "Redis commands per request by command (median of $rounds rounds)"
awk -F'|' '{ key = $1 "|" $2; if (!(key in seen)) { order[++k] = key; seen[key] = 1 } runs[key]++
    split($4, parts, " "); for (p in parts) { split(parts[p], kv, "="); cmds[key, kv[1]] = 1; all[kv[1]] = 1; v[key, kv[1], runs[key]] = kv[2] } }
  END {
    PROCINFO["sorted_in"] = "@ind_str_asc"
    for (j = 1; j <= k; j++) {
      key = order[j]; line = ""
      for (c in all) if ((key, c) in cmds) {
        m = runs[key]; delete a; for (i = 1; i <= m; i++) a[i] = v[key, c, i] + 0; asort(a)
        med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        if (med > 0) line = line sprintf(" %s %.4f", c, med)
      }
      split(key, kk, "|"); r = kk[2]; sub(/\/blob\?bytes=1024/, "1KiB", r); sub(/\/counter/, "counter", r)
      printf "%-5s %-11s%s\n", kk[1], r, line
    }
  }' "$work/redis-each"
echo
echo "whole run: ${SECONDS}s"

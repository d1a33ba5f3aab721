#!/usr/bin/env bash
# Baton against the stacks a user would pick instead, side by side on this machine, each with three backends:
#   plain    a plain YARP app (bench/PlainYarp: only Yarp.ReverseProxy, HashCookie affinity), backends on their
#            stack's own in-memory session (ASP.NET Core's, or express-session's MemoryStore): sticky sessions,
#            lost with their process;
#   minimal  the same plain app doing the minimal durable work per change (bench/MinimalDurable: an awaited Redis
#            SET of 1 KiB and a group-committed SQLite upsert, WAL, synchronous=FULL, for every POST), the same
#            backends;
#   shared   (with SESSION_BYTES, .NET backends) the plain app with backends on a shared session store: ASP.NET
#            Core's session in Redis (a store round trip per request, the whole session written per change);
#   baton    the Baton gateway (Redis + the SQLite journal, shipped settings), backends on Baton's library;
# for (a) GET /counter (a request that changes nothing) and (b) POST /blob?bytes=1024 (a change of 1 KiB), in
# interleaved rounds, each printed with the CPU microseconds per request of the gateway, the backends and Redis,
# then each stack's throughput over plain's per round and its median, and the gateways' CPU per request.
# SESSION_BYTES=N (say 65536) measures large sessions instead: every session first stores a blob of N bytes, and the
# change is POST /counter (a few bytes of it change).
# BACKENDS=dotnet (default: src/DemoBackend) or node (src/node/demo, after npm ci in src/node).
# Everything runs on loopback; needs wrk and redis-server (and node for BACKENDS=node).
# Usage: [BACKENDS=node] [SESSION_BYTES=N] scripts/bench-references.sh [seconds] [connections] [rounds]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
seconds=${1:-10}
connections=${2:-32}
rounds=${3:-3}
sessions=$(( connections * 2 > 64 ? connections * 2 : 64 ))
work=$(mktemp -d)
mkdir -p "$work/journal"
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

backends=${BACKENDS:-dotnet}
case $backends in
  dotnet) ;;
  node) [ -d src/node/node_modules ] || (cd src/node && npm ci --no-audit --no-fund --loglevel=error) ;;
  *) echo "BACKENDS must be dotnet or node, not '$backends'" >&2; exit 2 ;;
esac
dotnet build -c Release --nologo -v quiet >/dev/null
secret=bench-secret-0123456789abcdef0123456789abcdef
quiet=(--Logging:LogLevel:Default=Warning)

redis-server --port 6479 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
redis_pid=$!
declare -A gateway_pid backend_pids stack_port

start_backends() { # stack base store [backend args...]
  local name=$1 base=$2 store=$3; shift 3
  for i in 1 2 3; do
    if [ "$backends" = node ]; then
      node src/node/demo/server.js --urls "http://127.0.0.1:$((base + i))" --Demo:InstanceId="b$i" --Demo:SessionStore="$store" \
        --Baton:Secret="$secret" "$@" >"$work/$name-b$i.log" 2>&1 &
    else
      # The backends watch their content root for config changes: an empty one of their own.
      mkdir -p "$work/content"
      dotnet src/DemoBackend/bin/Release/net10.0/Baton.DemoBackend.dll --contentRoot "$work/content" --urls "http://127.0.0.1:$((base + i))" \
        --Demo:InstanceId="b$i" --Demo:SessionStore="$store" --Baton:Secret="$secret" "${quiet[@]}" "$@" >"$work/$name-b$i.log" 2>&1 &
    fi
    pids+=($!)
    backend_pids[$name]="${backend_pids[$name]:-} $!"
  done
  for i in 1 2 3; do wait_ready "http://127.0.0.1:$((base + i))/health"; done
}

destinations() { for i in 1 2 3; do echo "--ReverseProxy:Clusters:demo:Destinations:b$i:Address=http://127.0.0.1:$(($1 + i))"; done; }

start_gateway() { # stack port ready-path command...
  local name=$1 port=$2 ready=$3; shift 3
  # shellcheck disable=SC2046
  "$@" --urls "http://127.0.0.1:$port" $(destinations "$port") "${quiet[@]}" >"$work/$name-gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid[$name]=$!
  stack_port[$name]=$port
  wait_ready "http://127.0.0.1:$port$ready"
}

start_backends plain 6580 Memory
start_gateway plain 6580 /_plain/ready dotnet bench/PlainYarp/bin/Release/net10.0/Baton.Bench.PlainYarp.dll
start_backends minimal 6780 Memory
start_gateway minimal 6780 /_minimal/ready dotnet bench/MinimalDurable/bin/Release/net10.0/Baton.Bench.MinimalDurable.dll \
  --Durable:Redis=127.0.0.1:6479 --Durable:JournalPath="$work/journal/minimal.db"
start_backends baton 6680 Baton
start_gateway baton 6680 /_baton/ready dotnet src/Gateway/bin/Release/net10.0/Baton.Gateway.dll --Baton:Secret="$secret" \
  --Baton:Store:Redis=127.0.0.1:6479 --Baton:Journal:Path="$work/journal/baton.db"

stacks=(plain minimal baton)
requests=("GET /counter" "POST /blob?bytes=1024")
large=${SESSION_BYTES:-}
if [ -n "$large" ]; then
  requests=("GET /counter" "POST /counter")
  if [ "$backends" = dotnet ]; then
    start_backends shared 6880 Redis --Demo:Redis=127.0.0.1:6479
    start_gateway shared 6880 /_plain/ready dotnet bench/PlainYarp/bin/Release/net10.0/Baton.Bench.PlainYarp.dll
    stacks=(plain minimal shared baton)
  fi
fi
for name in "${stacks[@]}"; do
  make_sessions "$work/$name.cookies" "http://127.0.0.1:${stack_port[$name]}" $sessions
  if [ -n "$large" ]; then
    while read -r cookie; do
      curl -sf -o /dev/null -X POST -H "Cookie: $cookie" "http://127.0.0.1:${stack_port[$name]}/blob?bytes=$large"
    done <"$work/$name.cookies"
  fi
done

run() { # label stack method path round
  lua "$work/$2.cookies" "$3" "$4" >"$work/script.lua"
  local out g0 b0 r0 rps p50 p99 non2xx requests cpu
  g0=$(ticks ${gateway_pid[$2]}); b0=$(ticks ${backend_pids[$2]}); r0=$(ticks $redis_pid)
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/script.lua" "http://127.0.0.1:${stack_port[$2]}" 2>&1)
  read -r rps requests p50 p99 non2xx <<<"$(wrk_figures "$out")"
  cpu=$(awk -v g=$(( $(ticks ${gateway_pid[$2]}) - g0 )) -v b=$(( $(ticks ${backend_pids[$2]}) - b0 )) -v r=$(( $(ticks $redis_pid) - r0 )) -v n="$requests" \
    'BEGIN { printf "%6.0f %6.0f %6.0f", g * 10000 / n, b * 10000 / n, r * 10000 / n }')
  printf '%-30s %10s %10s %10s %8s   %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu"
  echo "$5|$3 $4|$2|$rps|$(awk '{ print $1 }' <<<"$cpu")" >>"$work/results"
}

# Warm every stack up (JIT, connection pools) before anything is measured.
for name in "${stacks[@]}"; do
  for request in "${requests[@]}"; do
    lua "$work/$name.cookies" $request >"$work/script.lua"
    wrk -t2 -c"$connections" -d"${WARMUP_SECONDS:-3}s" -s "$work/script.lua" "http://127.0.0.1:${stack_port[$name]}" >/dev/null 2>&1
  done
done

printf '%-30s %10s %10s %10s %8s   %s\n' "run (${seconds}s, ${connections} conns${large:+, $large-byte sessions})" "req/s" "p50" "p99" "non-2xx" "CPU µs/request: gateway backends redis"
for round in $(seq 1 "$rounds"); do
  for request in "${requests[@]}"; do
    for name in "${stacks[@]}"; do
      run "$(printf '%-8s %-13s #%s' "$name" "${request/\/blob?bytes=1024/1 KiB}" "$round")" "$name" $request "$round"
    done
  done
done

# Each stack's throughput over the plain stack's, per round and the median of the rounds; the gateways' CPU.
echo
awk -F'|' -v others="${stacks[*]:1}" '{ rps[$1 "|" $2 "|" $3] = $4; cpu[$1 "|" $2 "|" $3] = $5; if (!seen[$2]++) order[++n] = $2; if ($1 > rounds) rounds = $1 }
  END {
    count = split(others, names, " ")
    for (i = 1; i <= n; i++) for (k = 1; k <= count; k++) {
      line = ""; m = 0; g = 0
      for (r = 1; r <= rounds; r++) { ratio[++m] = rps[r "|" order[i] "|" names[k]] / rps[r "|" order[i] "|plain"]; line = line sprintf(" %.2f", ratio[m]); g += cpu[r "|" order[i] "|" names[k]] }
      for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (ratio[b] < ratio[a]) { t = ratio[a]; ratio[a] = ratio[b]; ratio[b] = t }
      median = m % 2 ? ratio[(m + 1) / 2] : (ratio[m / 2] + ratio[m / 2 + 1]) / 2
      printf "%-7s / plain, %-22s rounds:%s  median %.2f   gateway CPU %.0f µs/request\n", names[k], order[i], line, median, g / rounds
    }
  }' "$work/results"

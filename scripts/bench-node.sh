#!/usr/bin/env bash
# Node backends behind Baton against what a Node user runs instead, side by side on this machine:
#   plain    a plain YARP app (bench/PlainYarp: only Yarp.ReverseProxy, HashCookie affinity) in front of three
#            Express demos on express-session's MemoryStore: sticky sessions, lost with their process;
#   baton    the Baton gateway (Redis + the SQLite journal, shipped settings) in front of three Express demos
#            on the baton-session library: every change checkpointed.
# for (a) GET /counter (a request that changes nothing) and (b) POST /blob?bytes=1024 (a change of 1 KiB),
# in interleaved rounds, each printed with the CPU microseconds per request of the gateway, the backends
# and Redis, then the ratio baton / plain per round and its median.
# Everything runs on loopback; needs wrk, redis-server, node and `npm ci` done in src/node.
# Usage: scripts/bench-node.sh [seconds] [connections] [rounds]
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

[ -d src/node/node_modules ] || (cd src/node && npm ci --no-audit --no-fund --loglevel=error)
dotnet build -c Release --nologo -v quiet >/dev/null
secret=bench-secret-0123456789abcdef0123456789abcdef
quiet=(--Logging:LogLevel:Default=Warning)

redis-server --port 6479 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
redis_pid=$!
declare -A gateway_pid backend_pids stack_port

start_backends() { # stack base store
  for i in 1 2 3; do
    node src/node/demo/server.js --urls "http://127.0.0.1:$(($2 + i))" --Demo:InstanceId="b$i" --Demo:SessionStore="$3" \
      --Baton:Secret="$secret" >"$work/$1-b$i.log" 2>&1 &
    pids+=($!)
    backend_pids[$1]="${backend_pids[$1]:-} $!"
    wait_ready "http://127.0.0.1:$(($2 + i))/health"
  done
}

destinations() { for i in 1 2 3; do echo "--ReverseProxy:Clusters:demo:Destinations:b$i:Address=http://127.0.0.1:$(($1 + i))"; done; }

start_backends plain 6580 Memory
# shellcheck disable=SC2046
dotnet bench/PlainYarp/bin/Release/net10.0/Baton.Bench.PlainYarp.dll --urls http://127.0.0.1:6580 $(destinations 6580) "${quiet[@]}" >"$work/plain-gateway.log" 2>&1 &
pids+=($!)
gateway_pid[plain]=$!
stack_port[plain]=6580
wait_ready http://127.0.0.1:6580/_plain/ready

start_backends baton 6680 Baton
# shellcheck disable=SC2046
dotnet src/Gateway/bin/Release/net10.0/Baton.Gateway.dll --urls http://127.0.0.1:6680 --Baton:Secret="$secret" \
  --Baton:Store:Redis=127.0.0.1:6479 --Baton:Journal:Path="$work/journal/baton.db" $(destinations 6680) "${quiet[@]}" >"$work/baton-gateway.log" 2>&1 &
pids+=($!)
gateway_pid[baton]=$!
stack_port[baton]=6680
wait_ready http://127.0.0.1:6680/_baton/ready

stacks=(plain baton)
for name in "${stacks[@]}"; do
  make_sessions "$work/$name.cookies" "http://127.0.0.1:${stack_port[$name]}" $sessions
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
  echo "$5|$3 $4|$2|$rps" >>"$work/results"
}

# Warm every stack up (JIT, connection pools) before anything is measured.
for name in "${stacks[@]}"; do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    lua "$work/$name.cookies" $request >"$work/script.lua"
    wrk -t2 -c"$connections" -d"${WARMUP_SECONDS:-3}s" -s "$work/script.lua" "http://127.0.0.1:${stack_port[$name]}" >/dev/null 2>&1
  done
done

printf '%-30s %10s %10s %10s %8s   %s\n' "run (${seconds}s, ${connections} conns)" "req/s" "p50" "p99" "non-2xx" "CPU µs/request: gateway backends redis"
for round in $(seq 1 "$rounds"); do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    for name in "${stacks[@]}"; do
      run "$(printf '%-6s %-13s #%s' "$name" "${request/\/blob?bytes=1024/1 KiB}" "$round")" "$name" $request "$round"
    done
  done
done

# Baton's throughput over the plain stack's, per round and the median of the rounds.
echo
awk -F'|' '{ rps[$1 "|" $2 "|" $3] = $4; if (!seen[$2]++) order[++n] = $2; if ($1 > rounds) rounds = $1 }
  END {
    for (i = 1; i <= n; i++) {
      line = ""; m = 0
      for (r = 1; r <= rounds; r++) { ratio[++m] = rps[r "|" order[i] "|baton"] / rps[r "|" order[i] "|plain"]; line = line sprintf(" %.2f", ratio[m]) }
      for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (ratio[b] < ratio[a]) { t = ratio[a]; ratio[a] = ratio[b]; ratio[b] = t }
      median = m % 2 ? ratio[(m + 1) / 2] : (ratio[m / 2] + ratio[m / 2 + 1]) / 2
      printf "Baton / plain YARP + MemoryStore, %-22s rounds:%s  median %.2f\n", order[i], line, median
    }
  }' "$work/results"

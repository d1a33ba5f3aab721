#!/usr/bin/env bash
# Measures what checkpointing costs, side by side on this machine: Baton (sticky + checkpoint into
# Redis and the journal) against plain YARP sticky routing (the same gateway binary with YARP's own
# HashCookie affinity, backends on ASP.NET Core's in-memory session), for
#   (a) GET /counter        — a request that changes nothing
#   (b) POST /blob?bytes=1024 — a request that changes 1 KB of state
# Everything runs on loopback; needs wrk and redis-server. Usage: scripts/bench-checkpoint-overhead.sh [seconds] [connections]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-15}
connections=${2:-32}
# Twice as many sessions as connections, so requests of one session rarely overlap.
sessions=$(( connections * 2 > 64 ? connections * 2 : 64 ))
work=$(mktemp -d)
# The backends watch their content root for config changes (inotify): keep the journal out of it, or
# every journal write wakes three watchers.
mkdir -p "$work/content" "$work/journal"
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

dotnet build -c Release --nologo -v quiet >/dev/null
gateway=src/Gateway/bin/Release/net10.0/Baton.Gateway.dll
backend=src/DemoBackend/bin/Release/net10.0/Baton.DemoBackend.dll
secret=bench-secret-0123456789abcdef0123456789abcdef
quiet=(--Logging:LogLevel:Default=Warning --Logging:LogLevel:Microsoft.AspNetCore=Warning --Logging:LogLevel:Yarp=Warning)

redis-server --port 6479 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
redis_pid=$!
declare -A gateway_pid backend_pids

start_stack() { # name gatewayPort backendBase mode policy [extra gateway args...]
  local name=$1 port=$2 base=$3 mode=$4 policy=$5; shift 5
  for i in 1 2 3; do
    dotnet "$backend" --contentRoot "$work/content" --urls "http://127.0.0.1:$((base + i))" --Demo:InstanceId="b$i" \
      --Demo:SessionStore="$mode" --Baton:Secret="$secret" "${quiet[@]}" >"$work/$name-b$i.log" 2>&1 &
    pids+=($!)
    backend_pids[$name]="${backend_pids[$name]:-} $!"
  done
  dotnet "$gateway" --urls "http://127.0.0.1:$port" --Baton:Secret="$secret" --Baton:Journal:Path="${JOURNAL_DIR:-$work/journal}/$name.db" \
    --ReverseProxy:Clusters:demo:SessionAffinity:Policy="$policy" \
    $(for i in 1 2 3; do echo "--ReverseProxy:Clusters:demo:Destinations:b$i:Address=http://127.0.0.1:$((base + i))"; done) \
    "${quiet[@]}" "$@" >"$work/$name-gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid[$name]=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/_baton/ready" && break; sleep 0.2; done
  # One cookie header per session, made by a first request.
  : >"$work/$name.cookies"
  for s in $(seq 1 $sessions); do
    curl -s -o /dev/null -c "$work/jar" -X POST "http://127.0.0.1:$port/counter"
    # HttpOnly cookies are saved as '#HttpOnly_host ...' lines.
    sed 's/^#HttpOnly_//' "$work/jar" | awk '!/^#/ && NF >= 7 { printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 } END { print "" }' >>"$work/$name.cookies"
    rm -f "$work/jar"
  done
}

lua() { # cookies-file method path
  cat <<LUA
local cookies = {}
for line in io.lines("$1") do cookies[#cookies + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("$2", "$3", { ["Cookie"] = cookies[(n % #cookies) + 1] })
end
LUA
}

# BATON_ARGS adds gateway settings to the Baton stack, e.g. BATON_ARGS="--Baton:Journal:Synchronous=Normal".
start_stack baton 6480 6480 Baton Baton --Baton:Store:Redis=127.0.0.1:6479 ${BATON_ARGS:-}
start_stack yarp 6580 6580 Memory HashCookie

ticks() { # pids... -> CPU clock ticks (user + system) used so far
  local total=0 pid
  for pid in "$@"; do
    total=$(( total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat") ))
  done
  echo $total
}

run() { # label port name method path
  lua "$work/$3.cookies" "$4" "$5" >"$work/script.lua"
  local out g0 b0 r0
  g0=$(ticks ${gateway_pid[$3]}); b0=$(ticks ${backend_pids[$3]}); r0=$(ticks $redis_pid)
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/script.lua" "http://127.0.0.1:$2" 2>&1)
  local rps p50 p99 non2xx requests
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
  # CPU microseconds per request of the gateway, the backends and Redis (clock ticks of 10 ms).
  local cpu
  cpu=$(awk -v g=$(( $(ticks ${gateway_pid[$3]}) - g0 )) -v b=$(( $(ticks ${backend_pids[$3]}) - b0 )) -v r=$(( $(ticks $redis_pid) - r0 )) -v n="$requests" \
    'BEGIN { printf "%6.0f %6.0f %6.0f", g * 10000 / n, b * 10000 / n, r * 10000 / n }')
  printf '%-34s %10s %10s %10s %8s   %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu"
  echo "$1 $rps" >>"$work/results"
}

# Warm both stacks up (JIT, connection pools) before anything is measured.
for target in "6580 yarp" "6480 baton"; do
  set -- $target
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    lua "$work/$2.cookies" $request >"$work/script.lua"
    wrk -t2 -c"$connections" -d"${WARMUP_SECONDS:-3}s" -s "$work/script.lua" "http://127.0.0.1:$1" >/dev/null 2>&1
  done
done

printf '%-34s %10s %10s %10s %8s   %s\n' "run (${seconds}s, ${connections} conns)" "req/s" "p50" "p99" "non-2xx" "CPU µs/request: gateway backends redis"
for round in 1 2; do
  run "plain YARP   GET /counter   #$round" 6580 yarp GET /counter
  run "Baton        GET /counter   #$round" 6480 baton GET /counter
  run "plain YARP   POST 1 KB      #$round" 6580 yarp POST "/blob?bytes=1024"
  run "Baton        POST 1 KB      #$round" 6480 baton POST "/blob?bytes=1024"
done

awk '
  { sub(/ +#[0-9]+/, "", $0); label = $0; sub(/ [^ ]+$/, "", label); rps = $NF; sum[label] += rps; cnt[label]++ }
  END {
    a = sum["Baton        GET /counter"] / sum["plain YARP   GET /counter"]
    b = sum["Baton        POST 1 KB"] / sum["plain YARP   POST 1 KB"]
    printf "\nthroughput ratio Baton / plain YARP: (a) no change %.2f   (b) 1 KB change %.2f\n", a, b
  }' "$work/results"

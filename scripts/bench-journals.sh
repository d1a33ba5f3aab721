#!/usr/bin/env bash
# What each journal provider costs, side by side on this machine: Baton (sticky + checkpoint into Redis and the
# journal) on each provider against a plain YARP app (bench/PlainYarp: only Yarp.ReverseProxy, HashCookie
# affinity, backends on ASP.NET Core's in-memory session), for
#   (a) GET /counter        — a request that changes nothing
#   (b) POST /blob?bytes=1024 — a request that changes 1 KB of state
# With JOURNALS (default "sqlite"; any of sqlite postgresql mysql) one Baton stack runs per journal provider, each
# beside the others over the same Redis: PostgreSQL and MariaDB servers of their own are started in a temporary
# folder (default durability: fsync on, one log flush per commit), and their CPU per request is measured too.
# Everything runs on loopback; needs wrk and redis-server (and postgresql, mariadb-server for those journals).
# Usage: [JOURNALS="sqlite postgresql mysql"] scripts/bench-journals.sh [seconds] [connections]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh
seconds=${1:-15}
connections=${2:-32}
# Twice as many sessions as connections, so requests of one session rarely overlap.
sessions=$(( connections * 2 > 64 ? connections * 2 : 64 ))
work=$(mktemp -d)
# The backends watch their content root for config changes (inotify): keep the journal out of it, or
# every journal write wakes three watchers.
mkdir -p "$work/content" "$work/journal"
pids=()
cleanup() {
  # PostgreSQL's fast shutdown (SIGINT) also returns its shared memory.
  [ -s "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -n 1 "$work/pg/data/postmaster.pid")" 2>/dev/null
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_WORK:-}" ] && cp -r "$work" /tmp/bench-work; rm -rf "$work"
}
trap cleanup EXIT INT TERM

dotnet build -c Release --nologo -v quiet >/dev/null
gateway=src/Gateway/bin/Release/net10.0/Baton.Gateway.dll
plain=bench/PlainYarp/bin/Release/net10.0/Baton.Bench.PlainYarp.dll
backend=src/DemoBackend/bin/Release/net10.0/Baton.DemoBackend.dll
secret=bench-secret-0123456789abcdef0123456789abcdef
quiet=(--Logging:LogLevel:Default=Warning --Logging:LogLevel:Microsoft.AspNetCore=Warning --Logging:LogLevel:Yarp=Warning)

redis-server --port 6479 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
pids+=($!)
redis_pid=$!
declare -A gateway_pid backend_pids journal_args stack_port
journals=${JOURNALS:-sqlite}
db_pids() { :; }
journal_args[sqlite]=""

if [[ " $journals " == *" postgresql "* ]]; then
  # PostgreSQL refuses to run as root: its folder and processes belong to the postgres user then.
  bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
  mkdir -p "$work/pg"
  as_pg=()
  if ((EUID == 0)); then chown postgres "$work" "$work/pg"; as_pg=(runuser -u postgres --); fi
  "${as_pg[@]}" "$bin/initdb" -D "$work/pg/data" -A trust -U baton -E UTF8 --no-locale >/dev/null
  "${as_pg[@]}" "$bin/postgres" -D "$work/pg/data" -k "$work/pg" -h 127.0.0.1 -p 6490 -c shared_buffers=128MB >"$work/pg.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/pg/data/postmaster.pid" ] && (echo >/dev/tcp/127.0.0.1/6490) 2>/dev/null && break; sleep 0.2; done
  journal_args[postgresql]="--Baton:Journal:Provider=PostgreSql --Baton:Journal:ConnectionString=Host=127.0.0.1;Port=6490;Username=baton;Database=postgres"
fi

if [[ " $journals " == *" mysql "* ]]; then
  mkdir -p "$work/my"
  mariadb-install-db --no-defaults --datadir="$work/my/data" --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
  mariadbd --no-defaults --datadir="$work/my/data" --socket="$work/my/sock" --port=6491 --bind-address=127.0.0.1 --skip-name-resolve \
    --skip-log-bin --innodb-buffer-pool-size=128M $( ((EUID == 0)) && echo --user=root) >"$work/my.log" 2>&1 &
  pids+=($!)
  my_pid=$!
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/6491) 2>/dev/null && break; sleep 0.2; done
  mariadb --socket="$work/my/sock" -uroot -e "CREATE DATABASE baton; CREATE USER 'baton'@'127.0.0.1'; GRANT ALL ON baton.* TO 'baton'@'127.0.0.1';"
  journal_args[mysql]="--Baton:Journal:Provider=MySql --Baton:Journal:ConnectionString=Server=127.0.0.1;Port=6491;Uid=baton;Database=baton"
fi

# The database servers' processes (PostgreSQL: the postmaster and its backends), for their CPU.
db_pids() {
  [ -s "$work/pg/data/postmaster.pid" ] && { local pm; pm=$(head -n 1 "$work/pg/data/postmaster.pid"); echo "$pm" $(pgrep -P "$pm"); }
  [ -n "${my_pid:-}" ] && echo "$my_pid"
  return 0
}

start_stack() { # name gatewayPort backendBase mode gateway-dll ready-path [extra gateway args...]
  local name=$1 port=$2 base=$3 mode=$4 dll=$5 ready=$6; shift 6
  for i in 1 2 3; do
    dotnet "$backend" --contentRoot "$work/content" --urls "http://127.0.0.1:$((base + i))" --Demo:InstanceId="b$i" \
      --Demo:SessionStore="$mode" --Baton:Secret="$secret" "${quiet[@]}" >"$work/$name-b$i.log" 2>&1 &
    pids+=($!)
    backend_pids[$name]="${backend_pids[$name]:-} $!"
  done
  dotnet "$dll" --urls "http://127.0.0.1:$port" \
    $(for i in 1 2 3; do echo "--ReverseProxy:Clusters:demo:Destinations:b$i:Address=http://127.0.0.1:$((base + i))"; done) \
    "${quiet[@]}" "$@" >"$work/$name-gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid[$name]=$!
  wait_ready "http://127.0.0.1:$port$ready"
  make_sessions "$work/$name.cookies" "http://127.0.0.1:$port" $sessions
}

# BATON_ARGS adds gateway settings to the Baton stacks, e.g. BATON_ARGS="--Baton:Journal:Synchronous=Normal".
stacks=(yarp)
port=6580
start_stack yarp 6580 6580 Memory "$plain" /_plain/ready
for journal in $journals; do
  port=$((port + 100))
  name=baton-$journal
  [ "$journal" = sqlite ] && name=baton
  # shellcheck disable=SC2086
  start_stack "$name" $port $port Baton "$gateway" /_baton/ready --Baton:Secret="$secret" --Baton:Journal:Path="${JOURNAL_DIR:-$work/journal}/$name.db" \
    --Baton:Store:Redis=127.0.0.1:6479 ${journal_args[$journal]} ${BATON_ARGS:-}
  stacks+=("$name")
  stack_port[$name]=$port
done
stack_port[yarp]=6580

run() { # label port name method path
  lua "$work/$3.cookies" "$4" "$5" >"$work/script.lua"
  local out g0 b0 r0 d0
  g0=$(ticks ${gateway_pid[$3]}); b0=$(ticks ${backend_pids[$3]}); r0=$(ticks $redis_pid); d0=$(ticks $(db_pids))
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/script.lua" "http://127.0.0.1:$2" 2>&1)
  local rps p50 p99 non2xx requests
  read -r rps requests p50 p99 non2xx <<<"$(wrk_figures "$out")"
  # CPU microseconds per request of the gateway, the backends, Redis and the database servers (clock ticks of 10 ms).
  local cpu
  cpu=$(awk -v g=$(( $(ticks ${gateway_pid[$3]}) - g0 )) -v b=$(( $(ticks ${backend_pids[$3]}) - b0 )) -v r=$(( $(ticks $redis_pid) - r0 )) \
    -v d=$(( $(ticks $(db_pids)) - d0 )) -v n="$requests" \
    'BEGIN { printf "%6.0f %6.0f %6.0f %6.0f", g * 10000 / n, b * 10000 / n, r * 10000 / n, d * 10000 / n }')
  printf '%-34s %10s %10s %10s %8s   %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}" "$cpu"
  echo "$3|$4 $5|$rps" >>"$work/results"
}

# Warm every stack up (JIT, connection pools) before anything is measured.
for name in "${stacks[@]}"; do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    lua "$work/$name.cookies" $request >"$work/script.lua"
    wrk -t2 -c"$connections" -d"${WARMUP_SECONDS:-3}s" -s "$work/script.lua" "http://127.0.0.1:${stack_port[$name]}" >/dev/null 2>&1
  done
done

label() { case $1 in yarp) echo "plain YARP" ;; baton) echo "Baton sqlite" ;; *) echo "Baton ${1#baton-}" ;; esac; }
printf '%-34s %10s %10s %10s %8s   %s\n' "run (${seconds}s, ${connections} conns)" "req/s" "p50" "p99" "non-2xx" "CPU µs/request: gateway backends redis db"
for round in 1 2; do
  for request in "GET /counter" "POST /blob?bytes=1024"; do
    for name in "${stacks[@]}"; do
      run "$(printf '%-16s %-13s' "$(label $name)" "${request/\/blob?bytes=1024/1 KB}") #$round" ${stack_port[$name]} $name $request
    done
  done
done

# Throughput of each Baton stack against plain YARP, summed over the rounds.
echo
awk -F'|' '{ sum[$1 "|" $2] += $3; if (!seen[$2]++) order[++n] = $2; if (!known[$1]++) names[++m] = $1 }
  END {
    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (names[j] != "yarp")
      printf "throughput %-18s %-22s / plain YARP: %.2f\n", names[j], order[i], sum[names[j] "|" order[i]] / sum["yarp|" order[i]]
  }' "$work/results"

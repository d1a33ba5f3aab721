#!/usr/bin/env bash
# Baton demo on loopback: three DemoBackends (b1..b3 on 5101-5103) behind the gateway on 8080,
# configured by the root appsettings.json, with redis-server on 6379 when it is installed and the
# port is free (otherwise the SQLite journal alone stores sessions). Ctrl-C stops everything it started.
# Arguments go to the gateway, e.g. ./demo.sh --Baton:Failover:MaxConcurrentRestoresPerDestination=16
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
cd "$root"

dotnet build -c Release --nologo -v quiet
# The gateway runs ReadyToRun-compiled, as its image does: its failover path runs rarely, so it is never
# warm, and precompiled code spares the first requests a backend kill catches the wait for the JIT.
dotnet publish src/Gateway -c Release --use-current-runtime --self-contained false -p:PublishReadyToRun=true \
  --nologo -v quiet -o "$root/.demo/gateway"

pids=()
cleanup() {
  trap - EXIT INT TERM
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  echo "demo stopped"
}
trap cleanup EXIT INT TERM

# Both sides use the documented development secret.
export ASPNETCORE_ENVIRONMENT=Development
mkdir -p .demo
store_args=(--Baton:Journal:Path="$root/.demo/journal.db")
if command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis-server "$root/config/redis.conf" --dir "$root/.demo" >"$root/.demo/redis.log" 2>&1 &
  pids+=($!)
  store_args+=(--Baton:Store:Redis=127.0.0.1:6379)
  store="Redis 127.0.0.1:6379 + journal .demo/journal.db"
else
  store="journal .demo/journal.db (no redis-server started)"
fi

for i in 1 2 3; do
  dotnet src/DemoBackend/bin/Release/net10.0/Baton.DemoBackend.dll \
    --contentRoot "$root/src/DemoBackend" --urls "http://127.0.0.1:510$i" --Demo:InstanceId="b$i" &
  pids+=($!)
done

# The gateway reads ./appsettings.json (the route config).
dotnet "$root/.demo/gateway/Baton.Gateway.dll" "${store_args[@]}" "$@" &
gateway=$!
pids+=($gateway)

cat <<MSG

Baton demo: gateway http://127.0.0.1:8080  ->  b1 :5101, b2 :5102, b3 :5103
Session store: $store
  curl -c jar -b jar -X POST http://127.0.0.1:8080/counter     # increments; note "instance"
  curl -c jar -b jar http://127.0.0.1:8080/counter             # same instance, same count
  curl http://127.0.0.1:8080/_baton/ready                      # gateway readiness
Kill a backend (kill -9) and keep going: its sessions move with their state.
Ctrl-C stops everything.

MSG
# Backends may die (that is the demo); the demo ends when the gateway does, or on Ctrl-C.
wait "$gateway" || true

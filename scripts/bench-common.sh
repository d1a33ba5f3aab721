# Helpers the benchmark scripts share (sourced, not run). They expect $work (a temporary folder).

# One cookie header per session, made by a first POST of each session: make_sessions FILE URL COUNT
make_sessions() {
  : >"$1"
  for _ in $(seq 1 "$3"); do
    curl -s -o /dev/null -c "$work/jar" -X POST "$2/counter"
    # HttpOnly cookies are saved as '#HttpOnly_host ...' lines.
    sed 's/^#HttpOnly_//' "$work/jar" | awk '!/^#/ && NF >= 7 { printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 } END { print "" }' >>"$1"
    rm -f "$work/jar"
  done
}

# A wrk script sending METHOD PATH with the sessions' cookies in turn: lua COOKIES-FILE METHOD PATH
lua() {
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

# What a wrk run printed (wrk --latency), as "req/s requests p50 p99 non-2xx": wrk_figures OUTPUT
wrk_figures() {
  awk '/Requests\/sec/ { rps = $2 } /requests in/ { n = $1 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 } /Non-2xx/ { bad = $NF }
    END { print rps, n, p50, p99, (bad == "" ? 0 : bad) }' <<<"$1"
}

# CPU clock ticks (user + system, 10 ms each) the processes have used so far: ticks PID...
ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$(( total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat") ))
  done
  echo $total
}

# Waits until URL answers 2xx, at most 20 s: wait_ready URL
wait_ready() {
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "$1 did not answer within 20 s" >&2
  return 1
}

#!/usr/bin/env bash
# Where a keep-alive request's context switches come from: HAProxy and Switchyard (1 thread
# each) side by side behind one nginx, wrk keep-alive for 5 s each, per-thread voluntary and
# involuntary context switches and CPU from /proc, and the syscalls per request (perf stat
# tracepoints, when perf is installed). Results: benches/results/profile-wakeups.md.
#
#   bash benches/profile-wakeups.sh [ROUNDS] [WRK_THREADS]      (defaults 3 and 1)
#   SWITCHYARD_ADDON=path/to/switchyard.node bash benches/profile-wakeups.sh   # another build
#
# Ports 28001, 28002 (nginx), 28100 (HAProxy), 28110 (Switchyard) on 127.0.0.1. Every process
# started here is stopped by pid on exit, also on failure or Ctrl-C.
set -euo pipefail
rounds=${1:-3}
wrk_threads=${2:-1}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/switchyard-wakeups.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cat > "$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/nginx.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  server { listen 127.0.0.1:28001; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:28002; location / { return 200 "ok"; } }
}
EOF
cat > "$work/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
frontend f
  bind 127.0.0.1:28100
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:28001
  server s2 127.0.0.1:28002
EOF
cat > "$work/switchyard.yaml" <<EOF
workers: 1
listeners:
  bench: { address: "127.0.0.1:28110", pool: web, idle_timeout: "600s" }
pools:
  web:
    backends: [ { address: "127.0.0.1:28001" }, { address: "127.0.0.1:28002" } ]
EOF

nginx -c "$work/nginx.conf" & pids+=($!)
haproxy -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 & pids+=($!)
haproxy_pid=$!
NAPI_RS_NATIVE_LIBRARY_PATH="${SWITCHYARD_ADDON:-}" node "$root/dist/cli.js" start -c "$work/switchyard.yaml" > "$work/switchyard.log" 2>&1 & pids+=($!)
switchyard_pid=$!
for port in 28100 28110; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" > /dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/" > /dev/null || { echo "port $port not ready" >&2; exit 1; }
done

# Per thread of $1: "name voluntary involuntary cpu_ticks".
threads() { for t in /proc/"$1"/task/*; do
  echo "$(tr ' ' _ < "$t/comm") $(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{n=$2} END{print v, n}' "$t/status") $(awk '{print $14+$15}' "$t/stat")"
done; }
perf_events=context-switches,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto
has_perf=$(command -v perf > /dev/null && perf stat -e syscalls:sys_enter_epoll_wait true > /dev/null 2>&1 && echo 1 || echo 0)

printf '| round | proxy | thread | req/s | voluntary cs/req | involuntary cs/req | CPU µs/req | epoll_wait/req | recv/req | send/req |\n'
printf '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for round in $(seq "$rounds"); do
  for proxy in haproxy switchyard; do
    pid=$([ "$proxy" = haproxy ] && echo "$haproxy_pid" || echo "$switchyard_pid")
    port=$([ "$proxy" = haproxy ] && echo 28100 || echo 28110)
    threads "$pid" > "$work/before"
    if [ "$has_perf" = 1 ]; then
      perf stat -x, -e "$perf_events" -p "$pid" -o "$work/perf" -- sleep 5.3 & perf_pid=$!
    fi
    wrk -t"$wrk_threads" -c64 -d5s "http://127.0.0.1:$port/" > "$work/wrk"
    [ "$has_perf" = 1 ] && wait "$perf_pid"
    threads "$pid" > "$work/after"
    req=$(awk '/requests in/{print $1}' "$work/wrk")
    sys() { [ "$has_perf" = 1 ] && awk -F, -v e="$1" -v r="$req" '$3 == e {printf "%.3f", $1 / r}' "$work/perf" || echo n/a; }
    paste "$work/before" "$work/after" | awk -v r="$req" -v round="$round" -v proxy="$proxy" \
      -v ew="$(sys syscalls:sys_enter_epoll_wait)" -v rv="$(sys syscalls:sys_enter_recvfrom)" -v sd="$(sys syscalls:sys_enter_sendto)" \
      '{ v = $6 - $2; n = $7 - $3; c = $8 - $4; if (v + n > 10)
           printf "| %s | %s | %s | %.0f | %.3f | %.3f | %.2f | %s | %s | %s |\n", round, proxy, $1, r / 5, v / r, n / r, c * 10000 / r, ew, rv, sd }'
  done
done

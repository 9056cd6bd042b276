#!/usr/bin/env bash
# Installs the benchmark peers and tools from Debian's packages, skipping what is already there.
# Run as root (or with sudo available). Safe to run repeatedly.
set -euo pipefail

# package -> a file whose presence means it is installed
declare -A probe=(
  [haproxy]=/usr/sbin/haproxy
  [nginx-light]=/usr/sbin/nginx
  [libnginx-mod-stream]=/usr/lib/nginx/modules/ngx_stream_module.so
  [wrk]=/usr/bin/wrk
  [iperf3]=/usr/bin/iperf3
  [caddy]=/usr/bin/caddy                 # the Caddy reverse_proxy peer of the HTTP (L7) workloads
  [nghttp2-client]=/usr/bin/h2load       # h2load drives the HTTP/2 workloads
  [librsvg2-bin]=/usr/bin/rsvg-convert   # SVG -> PNG for the ratio chart (optional)
  [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
)

missing=()
for pkg in haproxy nginx-light libnginx-mod-stream wrk iperf3 caddy nghttp2-client librsvg2-bin fonts-dejavu-core; do
  if [[ ! -e "${probe[$pkg]}" ]] && ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-peers: all peers present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx's and haproxy's packages start a system service on install where an init system runs;
# the benchmark uses its own foreground instances, so stop them again if they came up.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
for svc in nginx haproxy iperf3 caddy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl stop "$svc" || true
  fi
done
echo "install-peers: done"

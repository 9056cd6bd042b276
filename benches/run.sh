#!/usr/bin/env bash
# Entry point of `npm run bench`: install missing peers, raise the fd limit, run the harness.
# All arguments go to benches/run.mjs (see benches/README.md, or `npm run bench -- --help`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

bash "$here/install-peers.sh"

# 10,000 idle client connections plus their backend legs need ~20k fds in the proxy and 10k in
# the client; ask for plenty (root may raise the hard limit), else take what the hard limit allows.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$here/work"
exec node "$here/run.mjs" "$@"

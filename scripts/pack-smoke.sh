#!/usr/bin/env bash
# Pack the package, install the tarball into an empty project with no cargo or
# rustc on PATH and with --ignore-scripts, and use it: CLI, demo, library import.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cd "$root"
tgz="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tgz ($(du -h "$work/$tgz" | cut -f1))"
if tar tzf "$work/$tgz" | grep -E '(^package/(crates|ts|__test__|target)/|\.pem$|\.key$)'; then
  echo "the tarball contains files that must not ship (above)" >&2
  exit 1
fi

# A PATH without the Rust toolchain: node and npm only.
nodebin="$(dirname "$(command -v node)")"
clean_path="$nodebin:/usr/bin:/bin"
if PATH="$clean_path" command -v cargo >/dev/null; then
  mkdir -p "$work/bin"
  ln -s "$(command -v node)" "$work/bin/node"
  ln -s "$(command -v npm)" "$work/bin/npm"
  ln -s "$(command -v npx)" "$work/bin/npx"
  clean_path="$work/bin:/usr/bin:/bin"
  PATH="$clean_path" command -v cargo >/dev/null && { echo "cannot hide cargo from PATH" >&2; exit 1; }
fi

mkdir "$work/app" && cd "$work/app"
PATH="$clean_path" npm init -y >/dev/null
PATH="$clean_path" npm install --ignore-scripts --no-audit --no-fund "$work/$tgz" >/dev/null
PATH="$clean_path" npx --no-install switchyard --version
PATH="$clean_path" node --input-type=module -e "
  import { Switchyard, defineConfig } from 'switchyard';
  import net from 'node:net';
  const backend = net.createServer((s) => s.end('pong')).listen(0, '127.0.0.1');
  await new Promise((r) => backend.once('listening', r));
  const lb = await Switchyard.start(defineConfig({
    listeners: { web: { address: '127.0.0.1:0', pool: 'p' } },
    pools: { p: { backends: [{ address: '127.0.0.1:' + backend.address().port }] } },
  }));
  const reply = await new Promise((resolve, reject) => {
    const c = net.connect(lb.address('web').port, '127.0.0.1');
    let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => resolve(got)); c.on('error', reject);
  });
  await lb.close({ drainMs: 0 }); backend.close();
  if (reply !== 'pong') { console.error('unexpected reply', reply); process.exit(1); }
  console.log('library import: ok');
"
# The demo answers curl.
PATH="$clean_path" npx --no-install switchyard demo --port 0 > demo.log 2>&1 &
for _ in $(seq 1 200); do grep -q 'balancer: ' demo.log && break; sleep 0.1; done
url="$(grep -o 'balancer: http://[^ ]*' demo.log | cut -d' ' -f2)"
[ -n "$url" ] || { cat demo.log; echo "demo did not start" >&2; exit 1; }
curl -sS --max-time 10 "$url" | grep -q "hello from demo backend"
echo "demo: ok"
# Types for a TypeScript consumer.
cat > consumer.ts <<'TS'
import { Switchyard, defineConfig, type Stats } from 'switchyard';
const config = defineConfig({ listeners: { a: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:1' }] } } });
export async function run(): Promise<Stats> { const lb = await Switchyard.start(config); return lb.stats(); }
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022", "noEmit": true, "skipLibCheck": false, "types": [] }, "files": ["consumer.ts"] }
JSON
"$root/node_modules/.bin/tsc" -p tsconfig.json
echo "types: ok"
echo "pack smoke test passed"

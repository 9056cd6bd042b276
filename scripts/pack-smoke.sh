#!/usr/bin/env bash
# Pack the package, install the tarball (under its npm name, switchyard-lb) into an
# empty project with no cargo or rustc on PATH and with --ignore-scripts, and use it:
# the `switchyard` command, the demo, the library through `import` and `require`,
# types. Then the published layout: the main package without a binary plus the
# per-platform package napi create-npm-dirs / artifacts make (what npm installs
# from the registry as an optional dependency).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
fail() { echo "pack-smoke: $*" >&2; exit 1; }

# Background processes run in their own process group (setsid), and are stopped by
# group: `npx switchyard demo` is npx → sh → node, and killing only the pid $! used
# to leave the demo running after CI.
bg_groups=()
# start_bg LOG CMD...: start CMD in a new process group; its pid (= the group id) in $bg_pid.
start_bg() {
  local log="$1"; shift
  setsid "$@" > "$log" 2>&1 < /dev/null &
  bg_pid=$!
  bg_groups+=("$bg_pid")
  # setsid only forks (and $! would not be the group) when started as a group leader, which a
  # background job of a script never is; check rather than assume.
  local pgid; pgid="$(ps -o pgid= -p "$bg_pid" | tr -d ' ')"
  [ -z "$pgid" ] || [ "$pgid" = "$bg_pid" ] || fail "setsid did not make $bg_pid a process group leader (group $pgid)"
}
# Is a live (non-zombie) process left in group $1?
group_alive() { ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
# stop_group PGID: SIGTERM the group, SIGKILL what is left after 5 s, reap the leader.
stop_group() {
  local g="$1"
  kill -TERM -- "-$g" 2>/dev/null || true
  for _ in $(seq 1 50); do group_alive "$g" || break; sleep 0.1; done
  kill -KILL -- "-$g" 2>/dev/null || true
  for _ in $(seq 1 20); do group_alive "$g" || break; sleep 0.1; done
  wait "$g" 2>/dev/null || true
}
# On any exit: stop every group, fail if a process survived, remove the work directory.
cleanup() {
  local rc=$? left=()
  for g in ${bg_groups[@]+"${bg_groups[@]}"}; do
    stop_group "$g"
    if group_alive "$g"; then left+=("$g"); fi
  done
  rm -rf "$work"
  if [ "${#left[@]}" -gt 0 ]; then
    echo "pack-smoke: processes left running in group(s) ${left[*]}:" >&2
    ps -eo pid=,pgid=,args= | awk -v left=" ${left[*]} " 'index(left, " " $2 " ")' >&2 || true
    rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT

cd "$root"
version="$(node -p 'require("./package.json").version')"
name="$(node -p 'require("./package.json").name')"
# napi-rs writes the platform package names into the loader at build time: a loader built
# before a rename would look for packages that are never published.
grep -q "require('$name-linux-x64-gnu')" native/index.cjs \
  || fail "native/index.cjs does not load $name-<platform> packages (built under another package name?): rebuild with npm run build"
ls native/switchyard.*.node >/dev/null 2>&1 || fail "no native/switchyard.<platform>.node: build the addon first (npm run build)"
tgz="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
[ -f "$work/$tgz" ] || fail "npm pack did not produce a tarball"
bytes="$(wc -c < "$work/$tgz" | tr -d ' ')"
echo "packed $tgz: $bytes bytes ($(du -h "$work/$tgz" | cut -f1)), $(tar tzf "$work/$tgz" | wc -l | tr -d ' ') files"
tar tzf "$work/$tgz" > "$work/listing"
for f in package/package.json package/dist/index.js package/dist/index.d.ts package/dist/cli.js \
  package/native/index.cjs package/native/index.d.cts; do
  grep -qx "$f" "$work/listing" || fail "the tarball lacks $f"
done
grep -qE '^package/native/switchyard\.[a-z0-9-]+\.node$' "$work/listing" || fail "the tarball has no native binary"
if grep -E '(^package/(crates|ts|__test__|target|benches|scripts|npm|artifacts)/|\.(pem|key|map|rs)$|/\.env)' "$work/listing"; then
  fail "the tarball contains files that must not ship (above)"
fi
[ "$bytes" -lt 5000000 ] || fail "the tarball is $bytes bytes; expected well under 5 MB (is native/ a debug build? npm run build makes a release build)"

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

# consumer HOW WHAT NAMES FROM BODY: run BODY (an async function body) as a consumer would,
# after `import { NAMES } from 'FROM'` (HOW=import, ESM) or `const { NAMES } = require('FROM')`
# (HOW=require: Node's require(esm), unflagged since 20.19 and 22.12); `net` is node:net. It
# prints "WHAT HOW: ok". Anything on stderr fails the check: users would see it (e.g. an
# ExperimentalWarning).
consumer() {
  local how="$1" what="$2" names="$3" from="$4" body="$5" load type
  case "$how" in
    import) type=module; load="import { $names } from '$from'; import net from 'node:net';" ;;
    require) type=commonjs; load="const { $names } = require('$from'); const net = require('node:net');" ;;
    *) fail "consumer: import or require, not '$how'" ;;
  esac
  PATH="$clean_path" node --input-type="$type" -e "
  $load
  (async () => {
  $body
  console.log('$what $how: ok');
  })().catch((e) => { console.error(e); process.exit(1); });
" 2> "$work/consumer.err" || { cat "$work/consumer.err" >&2; fail "the $what via $how failed"; }
  [ ! -s "$work/consumer.err" ] || { cat "$work/consumer.err" >&2; fail "the $what via $how wrote to stderr"; }
}

# Load the library, balance one connection through it. $1: import or require.
check_library() {
  consumer "$1" library 'Switchyard, defineConfig' "$name" "
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
  if (reply !== 'pong') { console.error('unexpected reply', reply); process.exit(1); }"
}

# The test kit (switchyard-lb/testing): fake backends, a balancer, traffic counted per backend. $1: import or require.
check_testing() {
  consumer "$1" 'test kit' 'startKit, assertShare' "$name/testing" "
  const kit = await startKit({ backends: ['a', 'b'] });
  try { assertShare(await kit.send(10), 'a', 0.5, 0.5); } finally { await kit.close(); }"
}

mkdir "$work/app" && cd "$work/app"
PATH="$clean_path" npm init -y >/dev/null
PATH="$clean_path" npm install --ignore-scripts --no-audit --no-fund "$work/$tgz" >/dev/null
[ -d "node_modules/$name" ] && [ ! -e node_modules/switchyard ] || fail "the tarball should install as node_modules/$name"
got="$(PATH="$clean_path" npx --no-install switchyard --version)"
[ "$got" = "$version" ] || fail "switchyard --version printed '$got', expected $version"
echo "--version: ok"
check_library import
check_library require
check_testing import
check_testing require
# The demo answers curl.
PATH="$clean_path" start_bg demo.log npx --no-install switchyard demo --port 0
demo_pid=$bg_pid
for _ in $(seq 1 200); do grep -q 'balancer: ' demo.log && break; sleep 0.1; done
url="$(grep -o 'balancer: http://[^ ]*' demo.log | cut -d' ' -f2)"
[ -n "$url" ] || { cat demo.log; fail "demo did not start"; }
curl -sS --max-time 10 "$url" > demo.reply || fail "curl $url failed"
grep -q "hello from demo backend" demo.reply || fail "the demo balancer did not answer with a demo backend"
stop_group "$demo_pid"
if group_alive "$demo_pid"; then fail "the demo (process group $demo_pid) is still running after SIGTERM and SIGKILL"; fi
echo "demo: ok (stopped, nothing left in its process group)"
# Types for a TypeScript consumer.
cat > consumer.ts <<'TS'
import { Switchyard, defineConfig, type Stats } from 'switchyard-lb';
const config = defineConfig({ listeners: { a: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:1' }] } } });
export async function run(): Promise<Stats> { const lb = await Switchyard.start(config); return lb.stats(); }
TS
# The test kit's types, also without @types/node.
cat > consumer-testing.ts <<'TS'
import { canary } from 'switchyard-lb';
import { startKit, assertDecision, type Kit, type TrafficResult } from 'switchyard-lb/testing';
export async function run(): Promise<TrafficResult> {
  const kit: Kit = await startKit({ backends: ['a', 'b'], policies: [canary({ pool: 'main', canary: '127.0.0.1:1' })] });
  try { await kit.advance(1000); assertDecision(kit.decisions(), { action: 'set_weight' }); return await kit.send(10); } finally { await kit.close(); }
}
TS
# A CommonJS TypeScript file: its import compiles to require() of the ESM package.
cat > consumer-cjs.cts <<'TS'
import { Switchyard, type Stats } from 'switchyard-lb';
export async function stats(lb: Switchyard): Promise<Stats> { return lb.stats(); }
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "NodeNext", "moduleResolution": "NodeNext", "target": "ES2022", "noEmit": true, "skipLibCheck": false, "types": [] }, "files": ["consumer.ts", "consumer-cjs.cts", "consumer-testing.ts"] }
JSON
"$root/node_modules/.bin/tsc" -p tsconfig.json || fail "a TypeScript consumer does not type-check"
echo "types: ok"

# The published layout: the main package carries no binary; npm installs the
# binary from switchyard-lb-<platform>, made by napi create-npm-dirs + artifacts
# exactly as .github/workflows/release.yml does (targets cut by
# scripts/release-targets.mjs to the binaries present: here, this platform's).
stage="$work/stage"
mkdir -p "$stage/native" "$stage/artifacts/bindings"
cp -R "$root/package.json" "$root/README.md" "$root/dist" "$stage/"
cp "$root/native/index.cjs" "$root/native/index.d.cts" "$stage/native/"
node_file="$(cd "$root/native" && ls switchyard.*.node | head -n 1)"
cp "$root/native/$node_file" "$stage/artifacts/bindings/"
cd "$stage"
platform="$(node "$root/scripts/release-targets.mjs" artifacts)" || fail "scripts/release-targets.mjs"
[ "$node_file" = "switchyard.$platform.node" ] || fail "release-targets picked '$platform' for $node_file"
"$root/node_modules/.bin/napi" create-npm-dirs --npm-dir npm > "$work/napi.log" 2>&1 || { cat "$work/napi.log"; fail "napi create-npm-dirs"; }
"$root/node_modules/.bin/napi" artifacts -o artifacts --npm-dir npm > "$work/napi.log" 2>&1 || { cat "$work/napi.log"; fail "napi artifacts"; }
[ -f "npm/$platform/$node_file" ] || fail "napi artifacts did not put $node_file into npm/$platform"
main_tgz="$(npm pack --silent --ignore-scripts --pack-destination "$work" | tail -n 1)"
tar tzf "$work/$main_tgz" > "$work/listing-main"
if grep -q '\.node$' "$work/listing-main"; then fail "the staged main package should carry no binary"; fi
plat_tgz="$(cd "npm/$platform" && npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "published layout: $main_tgz ($(wc -c < "$work/$main_tgz" | tr -d ' ') bytes) + $plat_tgz ($(wc -c < "$work/$plat_tgz" | tr -d ' ') bytes)"
mkdir "$work/app2" && cd "$work/app2"
PATH="$clean_path" npm init -y >/dev/null
PATH="$clean_path" npm install --ignore-scripts --no-audit --no-fund "$work/$main_tgz" "$work/$plat_tgz" >/dev/null
[ -d "node_modules/$name-$platform" ] || fail "the platform package $name-$platform is not installed"
[ ! -e "node_modules/$name/native/$node_file" ] || fail "the binary should come from $name-$platform"
got="$(PATH="$clean_path" npx --no-install switchyard --version)"
[ "$got" = "$version" ] || fail "switchyard --version printed '$got' (published layout)"
check_library import
check_library require
echo "published layout ($name + $name-$platform): ok"
echo "pack smoke test passed"

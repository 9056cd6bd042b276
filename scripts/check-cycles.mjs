#!/usr/bin/env node
// Fails when modules import each other in a cycle, in ts/ or in any crate under crates/.
// A cycle means neither side can be understood, tested or moved without the other, so the
// layering in ARCHITECTURE.md only holds while this passes.
//
//   node scripts/check-cycles.mjs [--ts-only | --rust-only]
//
// Prints every strongly connected component of more than one module (its files and one
// example cycle) and exits 1 if there is any. Plain Node >= 20, no dependencies: the
// import syntax of both languages is regular enough for a few regexes.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every file under `dir` (recursively) whose name ends with `ext`. */
function walk(dir, ext) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return walk(p, ext);
    return p.endsWith(ext) ? [p] : [];
  });
}

// ---------------------------------------------------------------- TypeScript

// `import x from './a.js'`, `import type { T } from`, `export * from`, `import './a.js'`:
// between the keyword and `from` only names, braces, commas and `*` may appear, so the
// pattern cannot run on into later code. Type-only imports count: they tie the modules'
// designs together just the same.
const TS_STATIC = /^\s*(?:import|export)\s+(?:[\w$*{},\s]+?\s+from\s+)?['"]([^'"]+)['"]/gm;
// `await import('./a.js')` and `typeof import('./a.js')`.
const TS_DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The file a relative specifier names: `./a.js` is `a.ts` in the sources. */
function resolveTs(from, spec) {
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(m|c)?js$/, '');
  const candidates = [base, `${stem}.ts`, `${stem}.mts`, `${stem}.cts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function tsGraph(dir) {
  const graph = new Map();
  for (const file of walk(dir, '.ts')) {
    const text = readFileSync(file, 'utf8');
    const deps = new Set();
    for (const re of [TS_STATIC, TS_DYNAMIC]) {
      for (const [, spec] of text.matchAll(re)) {
        if (!spec.startsWith('.')) continue; // packages and node: builtins are not ours
        const target = resolveTs(file, spec);
        if (target && target !== file) deps.add(target);
      }
    }
    graph.set(file, deps);
  }
  return graph;
}

// ---------------------------------------------------------------------- Rust
//
// Nodes are module files (`engine.rs`, `select/mod.rs`, `select/plan.rs`), one graph per crate.
// A -> B when A names something in B: `use crate::b::X`, a `crate::b::f()` path anywhere,
// `super::…` (so a child naming its parent is an edge), `self::b::…`, or a bare `b::…` where
// `b` is a child module A declares (the same reference as `self::b::…`, written shorter).
// Declaring a child (`mod b;`) is not an edge. A path goes to the deepest module file on it.
// A parent naming its own descendants is not an edge either: a module composes its children
// (declares, re-exports and uses them), and its children use the parent's shared items; that
// pair is one unit. Cycles between siblings, or through modules outside it, still count.

/** Code without comments, string and char literals (so `crate::` in a doc comment or a message
 * is not an edge) and without `pub(in crate::a)` visibilities (they use nothing). */
function stripRust(text) {
  // One left-to-right pass, so a quote inside a comment (or `//` inside a string) is read right.
  const token = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|(?<!\w)b?r(#*)"[\s\S]*?"\1|(?<!\w)b?"(?:\\[\s\S]|[^"\\])*"|(?<!\w)b?'(?:\\[^']{1,10}|[^'\\\n])'/g;
  return text
    .replace(token, (m) => (m.startsWith('/') ? ' ' : '""'))
    .replace(/\bpub\s*\(\s*in\s+[^)]*\)/g, 'pub');
}

/** Module path of a source file: `src/lib.rs` is the crate root, `src/a/mod.rs` and `src/a.rs` are `a`. */
function rustModulePath(src, file) {
  const parts = relative(src, file).replace(/\.rs$/, '').split('/');
  if (parts.at(-1) === 'mod' || (parts.length === 1 && (parts[0] === 'lib' || parts[0] === 'main'))) parts.pop();
  return parts;
}

/** Expand a `use` tree (`a::{self, b::{c, d}}`) into full paths (`a`, `a::b::c`, `a::b::d`). */
function expandUse(tree) {
  tree = tree.replace(/\s+as\s+\w+/g, '').replace(/\s+/g, ''); // `x as y` still uses `x`
  const open = tree.indexOf('{');
  if (open < 0) return [tree.replace(/::self$/, '')];
  const prefix = tree.slice(0, open); // ends with `::` (or empty: `use {a, b}`)
  const inner = tree.slice(open + 1, tree.lastIndexOf('}'));
  const items = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const ch = inner[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if ((ch === ',' || ch === undefined) && depth === 0) {
      if (i > start) items.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  return items.flatMap((item) => expandUse(prefix + item));
}

/**
 * Paths a file refers to, each with the names of the inline `mod x { … }` blocks around it
 * (`super::` inside `mod tests` means the file's own module, not its parent).
 */
function rustReferences(code) {
  // Inline module blocks, as [start, end, name] ranges; `mod x;` declarations are skipped.
  const inline = [];
  for (const m of code.matchAll(/\bmod\s+(\w+)\s*\{/g)) {
    let depth = 0;
    let i = m.index + m[0].length - 1;
    for (; i < code.length; i++) {
      if (code[i] === '{') depth++;
      else if (code[i] === '}' && --depth === 0) break;
    }
    inline.push([m.index, i, m[1]]);
  }
  const enclosing = (pos) => inline.filter(([s, e]) => s < pos && pos < e).map(([, , name]) => name);

  const refs = [];
  // `use` declarations (trees expanded); removed from the code before the next scan.
  const rest = code.replace(/\buse\s+([^;]+);/g, (m, tree, index) => {
    for (const path of expandUse(tree)) refs.push({ path: path.split('::'), mods: enclosing(index) });
    return ' '.repeat(m.length);
  });
  // Paths in code: `crate::a::b`, `super::super::x`, `self::a`, `child::f()`; not `$crate::`
  // (a macro's own crate) and not the tail of a longer path (`std::x::y`).
  for (const m of rest.matchAll(/(?<![\w$:])(?:\w+::)+\w+/g)) refs.push({ path: m[0].split('::'), mods: enclosing(m.index) });
  return refs;
}

function rustGraph(src) {
  const files = walk(src, '.rs');
  const pathOf = new Map(files.map((f) => [f, rustModulePath(src, f)]));
  // `#[path = "no_splice.rs"] mod splice;` makes that file (another) module `splice` of this one;
  // the path is relative to the declaring file's directory.
  for (const file of files) {
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/g)) {
      pathOf.set(resolve(dirname(file), m[1]), [...pathOf.get(file), m[2]]);
    }
  }
  // Module path → its files (more than one only with `#[path]` alternatives).
  const modules = new Map();
  for (const [file, path] of pathOf) modules.set(path.join('::'), [...(modules.get(path.join('::')) ?? []), file]);

  const graph = new Map();
  for (const file of files) {
    const self = pathOf.get(file);
    const code = stripRust(readFileSync(file, 'utf8'));
    // Child modules this file declares: a bare `child::x` path here means `self::child::x`.
    const children = new Set([...code.matchAll(/\bmod\s+(\w+)\s*;/g)].map((m) => m[1]));
    const deps = new Set();
    for (const { path, mods } of rustReferences(code)) {
      let abs;
      const here = [...self, ...mods]; // the (possibly inline) module the path is written in
      if (path[0] === 'crate') abs = path.slice(1);
      else if (path[0] === 'self') abs = [...here, ...path.slice(1)];
      else if (path[0] === 'super') {
        let n = 0;
        while (path[n] === 'super') n++;
        abs = [...here.slice(0, here.length - n), ...path.slice(n)];
      } else if (mods.length === 0 && children.has(path[0])) abs = [...self, ...path];
      else continue; // std, external crates, local names
      // The deepest existing module on the path: `crate::select::plan::Foo` is `select/plan.rs`.
      for (let n = abs.length; n >= 0; n--) {
        const targets = modules.get(abs.slice(0, n).join('::'));
        if (!targets) continue;
        const descendant = n > self.length && self.every((m, i) => abs[i] === m);
        if (descendant) break;
        for (const t of targets) if (t !== file) deps.add(t);
        break;
      }
    }
    graph.set(file, deps);
  }
  return graph;
}

// -------------------------------------------------------------------- cycles

/** Strongly connected components with more than one node (Tarjan). */
function cycles(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) out.push(scc.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** A shortest cycle through `start` inside `scc` (breadth-first back to `start`). */
function exampleCycle(graph, scc, start) {
  const members = new Set(scc);
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)) path.splice(1, 0, x);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** Print the cycles of one graph (file names relative to `base`); returns how many there are. */
function report(label, graph, base) {
  const found = cycles(graph);
  const name = (f) => relative(base, f);
  if (found.length === 0) {
    console.log(`${label}: no import cycles (${graph.size} modules)`);
    return 0;
  }
  console.log(`${label}: ${found.length} import cycle(s)`);
  for (const scc of found) {
    console.log(`  cycle of ${scc.length} modules: ${scc.map(name).join(', ')}`);
    console.log(`    e.g. ${exampleCycle(graph, scc, scc[0]).map(name).join(' -> ')}`);
  }
  return found.length;
}

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== '--ts-only' && a !== '--rust-only');
if (unknown.length || args.length > 1) {
  console.error('usage: node scripts/check-cycles.mjs [--ts-only | --rust-only]');
  process.exit(2);
}
let total = 0;
if (!args.includes('--rust-only')) total += report('ts', tsGraph(join(ROOT, 'ts')), join(ROOT, 'ts'));
if (!args.includes('--ts-only')) {
  const crates = join(ROOT, 'crates');
  for (const name of existsSync(crates) ? readdirSync(crates).sort() : []) {
    const src = join(crates, name, 'src');
    if (existsSync(src)) total += report(`crates/${name}/src`, rustGraph(src), src);
  }
}
process.exit(total > 0 ? 1 : 0);

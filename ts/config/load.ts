/**
 * Reading configuration files. The extension picks the parser; whatever the
 * format, the result goes through `validateConfig`, and every failure (missing
 * file, syntax error, throwing module, invalid value) is a `ConfigError` whose
 * source is the file path.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createJiti } from 'jiti';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import type { ResolvedConfig } from './types.js';
import { locateIssues } from './locate.js';
import { validateConfig } from './validate.js';

/** Formats `parseConfigText` understands. */
export type ConfigFormat = 'yaml' | 'json';

const TEXT_FORMATS: Record<string, ConfigFormat> = { '.yaml': 'yaml', '.yml': 'yaml', '.json': 'json' };
const JS_EXTS = ['.js', '.mjs', '.cjs'];
const TS_EXTS = ['.ts', '.mts', '.cts'];
const ALL_EXTS = [...Object.keys(TEXT_FORMATS), ...JS_EXTS, ...TS_EXTS];

/** Counts imports so a reload re-evaluates an ES module config instead of reusing the ESM cache. */
let generation = 0;
/** CommonJS configs are cached by file name in `require.cache`, whatever the import URL says. */
const requireCache = createRequire(import.meta.url).cache;

/** 1-based line and column of a character offset. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 };
}

/** Where a JSON.parse error is: V8 says "at position N" and, in newer versions, "(line L column C)". */
function jsonErrorPos(text: string, message: string): { line: number; col: number } | undefined {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return { line: Number(lc[1]), col: Number(lc[2]) };
  const at = /at position (\d+)/.exec(message);
  return at ? lineCol(text, Number(at[1])) : undefined;
}

/** Validate `raw`; on failure, add the line and column of each issue from `doc` (parsed from the same text). */
function validateLocated(raw: unknown, source: string, doc: Document.Parsed | undefined, lines: LineCounter): ResolvedConfig {
  try {
    return validateConfig(raw, source);
  } catch (err) {
    if (!(err instanceof ConfigError) || !doc || doc.errors.length > 0) throw err;
    throw new ConfigError(source, locateIssues(err.issues, doc.contents, lines));
  }
}

/**
 * Parse YAML or JSON text and validate it.
 * @param source file path (or any label) used in error messages
 * @throws ConfigError on a syntax error or an invalid configuration; each issue
 *   carries the line and column it is about where the text gives one
 */
export function parseConfigText(text: string, format: ConfigFormat, source: string): ResolvedConfig {
  const lines = new LineCounter();
  if (format === 'yaml') {
    // Default options keep YAML 1.2 core semantics: duplicate keys are errors, no timestamps.
    const doc = parseDocument(text, { lineCounter: lines });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        source,
        doc.errors.map((e) => {
          const pos = e.linePos?.[0];
          // The first line of `e.message` is the reason; the rest is a code excerpt.
          const reason = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
          return { path: '(yaml)', message: `YAML syntax error: ${reason}`, ...(pos ? { line: pos.line, col: pos.col } : {}) };
        }),
      );
    }
    return validateLocated(doc.toJS(), source, doc, lines);
  }
  const json = text.replace(/^\uFEFF/, '');
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigError(source, [{ path: '(json)', message: `JSON syntax error: ${message}`, ...jsonErrorPos(json, message) }]);
  }
  // Valid JSON is (nearly always) valid YAML with the same offsets: parsed again only for positions.
  return validateLocated(raw, source, parseDocument(json, { lineCounter: lines }), lines);
}

/** Evaluate a JS/TS module afresh (a reload must see the edited file, not the first evaluation). */
export async function importModule(abs: string, ext: string): Promise<Record<string, unknown>> {
  if (TS_EXTS.includes(ext)) return (await createJiti(import.meta.url, { moduleCache: false }).import(abs)) as Record<string, unknown>;
  delete requireCache[abs];
  const url = pathToFileURL(abs);
  url.searchParams.set('switchyard', String(++generation));
  return (await import(url.href)) as Record<string, unknown>;
}

/** Evaluate a JS/TS config module and return its (awaited) default export. */
async function importConfig(abs: string, ext: string): Promise<unknown> {
  const mod = await importModule(abs, ext);
  // (jiti: a TS module without a default export is taken whole, as `import(…, { default: true })` did.)
  if (TS_EXTS.includes(ext)) return await ('default' in mod ? mod.default : mod);
  if (!('default' in mod)) throw new Error('the module has no default export (expected `export default defineConfig({...})`)');
  return await mod.default;
}

/**
 * Load, parse and validate a configuration file, chosen by extension:
 * `.yaml`/`.yml`, `.json`, `.js`/`.mjs`/`.cjs` (default export), `.ts`/`.mts`/`.cts` (via jiti).
 * @throws ConfigError naming the file for every kind of failure
 */
export async function loadConfigFile(path: string): Promise<ResolvedConfig> {
  const ext = extname(path).toLowerCase();
  const format = TEXT_FORMATS[ext];
  const fail = (message: string): ConfigError => new ConfigError(path, [{ path: '(file)', message }]);
  if (!format && !JS_EXTS.includes(ext) && !TS_EXTS.includes(ext)) {
    throw fail(`unsupported extension ${JSON.stringify(ext || '(none)')} (expected one of ${ALL_EXTS.join(', ')})`);
  }
  const abs = resolve(path);
  let text: string;
  try {
    // Read even JS/TS files first: a missing file gets one clear message instead of a resolver error.
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw fail(`cannot read ${abs}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
  if (format) return parseConfigText(text, format, path);
  let raw: unknown;
  try {
    raw = await importConfig(abs, ext);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw fail(`cannot evaluate ${abs}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return validateConfig(raw, path);
}

/**
 * Test support for Prometheus text: parse a `/metrics` body into samples, run
 * `promtool check metrics` on it, and list the metric names a PromQL
 * expression reads (for "the dashboard and the rules query only exported names").
 */
import { spawnSync } from 'node:child_process';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample line of an exposition body (comments skipped; label values unescaped). */
export function parseExposition(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]) });
  }
  return out;
}

/** The one sample named `name` whose labels include `labels`; throws when there is not exactly one. */
export function sample(samples: PromSample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}

/** `promtool check metrics` on `text`: its exit status and everything it printed (lint problems). */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan']);

/**
 * Metric names read by a PromQL expression (or a Grafana `label_values(...)`
 * query): identifiers that are neither functions, keywords, label names in
 * `{...}` / `by (...)` / `on (...)` lists, nor inside strings or durations.
 */
export function promqlMetricNames(expr: string): string[] {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings: label values, templates
    .replace(/\$\{?\w+\}?/g, '') // Grafana variables ($pool, ${datasource}, $__rate_interval)
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\boffset\s+\S+/g, '');
  e = e.replace(/\blabel_values\s*\(([^,()]*)(?:,[^)]*)?\)/g, '$1'); // label_values(metric, label)
  const names = new Set<string>();
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    if (!PROMQL_WORDS.has(m[1]!.toLowerCase())) names.add(m[1]!);
  }
  return [...names];
}

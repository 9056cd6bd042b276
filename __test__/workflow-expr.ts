/**
 * Decides from a parsed GitHub Actions workflow whether a job runs, given how the jobs it
 * needs ended: enough of GitHub's expression language (`&&`, `||`, `!`, `==`, `!=`,
 * parentheses, string literals, `needs.<job>.result`, `github.ref`, the status functions
 * and `startsWith`/`endsWith`/`contains`) to evaluate job-level `if:` conditions, with
 * GitHub's rule that a condition without a status function means `success() && (...)`.
 * Used by packaging.spec.ts to check the release job graph without running it.
 */

/** How a job ended, as `needs.<job>.result` reports it. */
export type JobResult = 'success' | 'failure' | 'cancelled' | 'skipped';

/** What a job's `if:` sees. */
export interface RunContext {
  /** `needs.<id>.result` of each job this job needs. */
  needs: Record<string, JobResult>;
  /** `github.ref`, e.g. `refs/tags/v1.0.0`. */
  ref: string;
  /** Whether the run was cancelled. */
  cancelled: boolean;
}

type Value = string | number | boolean | null;

const STATUS_FUNCTIONS = /\b(success|failure|always|cancelled)\s*\(/;

/** Whether a job with this `needs:` and `if:` runs in `ctx`. */
export function jobRuns(job: { needs?: string | string[]; if?: string | boolean }, ctx: RunContext): boolean {
  const needs = [job.needs ?? []].flat();
  for (const n of needs) if (!(n in ctx.needs)) throw new Error(`no result given for needed job ${n}`);
  const raw = job.if === undefined ? 'success()' : String(job.if);
  const body = raw.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1');
  const expr = STATUS_FUNCTIONS.test(body) ? body : `success() && (${body})`;
  const results = needs.map((n) => ctx.needs[n]);
  const functions: Record<string, (...args: Value[]) => Value> = {
    success: () => !ctx.cancelled && results.every((r) => r === 'success'),
    failure: () => results.some((r) => r === 'failure'),
    cancelled: () => ctx.cancelled,
    always: () => true,
    startsWith: (s, p) => String(s).toLowerCase().startsWith(String(p).toLowerCase()),
    endsWith: (s, p) => String(s).toLowerCase().endsWith(String(p).toLowerCase()),
    contains: (s, p) => String(s).toLowerCase().includes(String(p).toLowerCase()),
  };
  const lookup = (path: string[]): Value => {
    if (path[0] === 'github' && path[1] === 'ref' && path.length === 2) return ctx.ref;
    if (path[0] === 'needs' && path.length === 3 && path[2] === 'result') {
      const r = ctx.needs[path[1]!];
      if (r === undefined) throw new Error(`${path.join('.')}: ${path[1]} is not in needs`);
      return r;
    }
    throw new Error(`unsupported context ${path.join('.')}`);
  };
  return truthy(new Parser(expr, functions, lookup).parse());
}

function truthy(v: Value): boolean {
  return v !== null && v !== false && v !== 0 && v !== '';
}

function equal(a: Value, b: Value): boolean {
  return typeof a === 'string' && typeof b === 'string' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

const TOKEN = /\s*(\|\||&&|==|!=|[()!,.]|'(?:[^']|'')*'|[A-Za-z_][\w-]*|\d+(?:\.\d+)?)/y;

/** A recursive-descent parser that evaluates as it parses. */
class Parser {
  private readonly tokens: string[] = [];
  private pos = 0;

  constructor(
    text: string,
    private readonly functions: Record<string, (...args: Value[]) => Value>,
    private readonly lookup: (path: string[]) => Value,
  ) {
    TOKEN.lastIndex = 0;
    while (TOKEN.lastIndex < text.trimEnd().length) {
      const start = TOKEN.lastIndex;
      const m = TOKEN.exec(text);
      if (!m) throw new Error(`cannot read the expression at ${start}: ${text.slice(start)}`);
      this.tokens.push(m[1]!);
    }
  }

  parse(): Value {
    const v = this.or();
    if (this.pos !== this.tokens.length) throw new Error(`unexpected ${this.tokens[this.pos]}`);
    return v;
  }

  private peek(): string | undefined {
    return this.tokens[this.pos];
  }

  private take(expected?: string): string {
    const t = this.tokens[this.pos++];
    if (t === undefined || (expected !== undefined && t !== expected)) throw new Error(`expected ${expected ?? 'a token'}, got ${t}`);
    return t;
  }

  private or(): Value {
    let v = this.and();
    while (this.peek() === '||') {
      this.take();
      const r = this.and();
      v = truthy(v) ? v : r;
    }
    return v;
  }

  private and(): Value {
    let v = this.unary();
    while (this.peek() === '&&') {
      this.take();
      const r = this.unary();
      v = truthy(v) ? r : v;
    }
    return v;
  }

  private unary(): Value {
    if (this.peek() === '!') {
      this.take();
      return !truthy(this.unary());
    }
    const left = this.primary();
    const op = this.peek();
    if (op === '==' || op === '!=') {
      this.take();
      const right = this.primary();
      return op === '==' ? equal(left, right) : !equal(left, right);
    }
    return left;
  }

  private primary(): Value {
    const t = this.take();
    if (t === '(') {
      const v = this.or();
      this.take(')');
      return v;
    }
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    if (/^\d/.test(t)) return Number(t);
    if (t === 'true' || t === 'false') return t === 'true';
    if (t === 'null') return null;
    if (this.peek() === '(') {
      const fn = this.functions[t];
      if (!fn) throw new Error(`unsupported function ${t}()`);
      this.take('(');
      const args: Value[] = [];
      while (this.peek() !== ')') {
        args.push(this.or());
        if (this.peek() === ',') this.take(',');
      }
      this.take(')');
      return fn(...args);
    }
    const path = [t];
    while (this.peek() === '.') {
      this.take('.');
      path.push(this.take());
    }
    return this.lookup(path);
  }
}

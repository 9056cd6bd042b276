/**
 * Typed errors. Every error Switchyard raises carries a stable `code`; errors
 * from the Rust data plane arrive as `[SWITCHYARD_ERR_X] message` and are
 * turned into the matching class by `fromNative`.
 */

/** Base class: `code` is stable and safe to match on. */
export class SwitchyardError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Where: e.g. `pools.api.backends[2].address`. */
  path: string;
  /** What was wrong and what was expected. */
  message: string;
}

/** The configuration is invalid. `issues` lists every problem found. */
export class ConfigError extends SwitchyardError {
  readonly issues: ConfigIssue[];
  readonly source: string;
  constructor(source: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `  ${source}: ${i.path}: ${i.message}`);
    super('SWITCHYARD_ERR_CONFIG', `invalid configuration (${issues.length} error${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.issues = issues;
    this.source = source;
  }
}

/** A listener could not bind its address (in use, not permitted, not local). */
export class BindError extends SwitchyardError {}

/** The data plane failed for another reason (runtime start, I/O). */
export class DataPlaneError extends SwitchyardError {}

/** The balancer was used after `close()`. */
export class ClosedError extends SwitchyardError {}

const NATIVE_CODE = /^\[(SWITCHYARD_ERR_[A-Z_]+)\] ([\s\S]*)$/;

/** Convert an error thrown by the addon into a typed error. */
export function fromNative(err: unknown, source = 'config'): SwitchyardError {
  const message = err instanceof Error ? err.message : String(err);
  const m = NATIVE_CODE.exec(message);
  if (!m) return new DataPlaneError('SWITCHYARD_ERR_INTERNAL', message, { cause: err });
  const [, code, text] = m as unknown as [string, string, string];
  switch (code) {
    case 'SWITCHYARD_ERR_BIND':
      return new BindError(code, text, { cause: err });
    case 'SWITCHYARD_ERR_CONFIG':
      return new ConfigError(source, [{ path: '(data plane)', message: text }]);
    case 'SWITCHYARD_ERR_CLOSED':
      return new ClosedError(code, text, { cause: err });
    default:
      return new DataPlaneError(code, text, { cause: err });
  }
}

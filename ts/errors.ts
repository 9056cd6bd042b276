/**
 * Typed errors. Every error Switchyard raises carries a stable `code`. Errors
 * from the Rust data plane cross as data (`NativeError`: code, message, and for
 * configuration errors the field of each problem); `fromNative` turns them into
 * the matching class.
 */
import type { ErrorCode as NativeErrorCode, NativeError } from './binding/types.generated.js';

/** Every code an error of Switchyard can carry (the data plane's and the control plane's). */
export type ErrorCode =
  | NativeErrorCode
  | 'SWITCHYARD_ERR_CONFLICT'
  | 'SWITCHYARD_ERR_NATIVE_LOAD'
  | 'SWITCHYARD_ERR_INTERNAL';

/** Base class: `code` is stable and safe to match on. */
export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
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
  /** 1-based line and column in the file, when the format gives positions (YAML, JSON). */
  line?: number;
  col?: number;
}

/** The configuration is invalid. `issues` lists every problem found. */
export class ConfigError extends SwitchyardError {
  readonly issues: ConfigIssue[];
  readonly source: string;
  constructor(source: string, issues: ConfigIssue[]) {
    const lines = issues.map((i) => `  ${source}${i.line === undefined ? '' : `:${i.line}:${i.col ?? 1}`}: ${i.path}: ${i.message}`);
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

/** A named pool, backend or listener does not exist. */
export class NotFoundError extends SwitchyardError {}

/** An error thrown by the addon, with its data as the data plane sent it. */
export class NativeCallError extends SwitchyardError {
  readonly data: NativeError;
  constructor(data: NativeError, options?: { cause?: unknown }) {
    super(data.code, data.message, options);
    this.data = data;
  }
}

/** Read the data of an error thrown by the addon (its message is the JSON of a `NativeError`). */
export function nativeCallError(err: unknown): NativeCallError | DataPlaneError {
  const message = err instanceof Error ? err.message : String(err);
  try {
    const data = JSON.parse(message) as NativeError;
    if (typeof data.code === 'string' && typeof data.message === 'string' && Array.isArray(data.issues)) {
      return new NativeCallError(data, { cause: err });
    }
  } catch {
    // not data: an error of napi itself (a wrong argument type, say)
  }
  return new DataPlaneError('SWITCHYARD_ERR_INTERNAL', message, { cause: err });
}

/** Convert an error from the data plane into a typed error; `source` names the configuration. */
export function fromNative(err: unknown, source = 'config'): SwitchyardError {
  if (!(err instanceof NativeCallError)) {
    return err instanceof SwitchyardError ? err : nativeCallError(err);
  }
  const { code, message, issues } = err.data;
  switch (code) {
    case 'SWITCHYARD_ERR_BIND':
      return new BindError(code, message, { cause: err });
    case 'SWITCHYARD_ERR_CONFIG':
      return new ConfigError(source, issues.length > 0 ? issues : [{ path: '(data plane)', message }]);
    case 'SWITCHYARD_ERR_CLOSED':
      return new ClosedError(code, message, { cause: err });
    case 'SWITCHYARD_ERR_NOT_FOUND':
      return new NotFoundError(code, message, { cause: err });
    default:
      // SWITCHYARD_ERR_RUNTIME, and any code a newer data plane may add.
      return new DataPlaneError(code, message, { cause: err });
  }
}

/**
 * Decision traces: for a sampled connection (TCP) or request (HTTP), which rule matched, every
 * backend of the pool with its verdict (chosen, eligible, skipped and why, failed and how), the
 * attempts in order and the winner. The data plane keeps the last 512 (`trace.rs`); a
 * listener's `trace_sample` (or `setTraceSample` at runtime) says which share is traced. The
 * types are generated from the Rust definitions; these are their public names.
 */
export type {
  Trace,
  TraceKind,
  TraceAttempt,
  TraceOutcome,
  Candidate as TraceCandidate,
  Verdict as TraceVerdict,
  Reason as TraceReason,
} from './binding/types.generated.js';

/** Which traces to read (every one kept when empty). */
export interface TraceQuery {
  /** Only this listener's. */
  listener?: string;
  /** Only decisions in this pool. */
  pool?: string;
  /** Only traces with a greater `seq` (poll for new ones with the last `seq` seen). */
  since?: number;
  /** At most this many, the newest. */
  limit?: number;
}

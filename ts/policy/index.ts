/** Control loops in TypeScript: the policy API, its clock, its signals, and the three built-in policies. */
export { definePolicy } from './types.js';
export type { Policy, PolicyContext, PolicyDecision, PolicyStatus } from './types.js';
export { ManualClock, realClock } from './clock.js';
export type { Clock, Scheduled } from './clock.js';
export { SignalReader, SignalWindow, mergeSignals, quantile } from './signals.js';
export type { BackendSignal, Latency, LatencySource } from './signals.js';
export type { DecisionCount } from './decisions.js';
export { canary } from './canary.js';
export type { CanaryOptions, CanaryState } from './canary.js';
export { adaptiveWeights } from './adaptive-weights.js';
export type { AdaptiveWeightsOptions } from './adaptive-weights.js';
export { autoDrain } from './auto-drain.js';
export type { AutoDrainOptions } from './auto-drain.js';

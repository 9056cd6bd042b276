/** Switchyard's public API. */
export { Switchyard } from './switchyard.js';
export type { StartOptions, CloseOptions, BoundAddress, SwitchyardEvents, BackendListener } from './switchyard.js';
export type { BackendEvent } from './events.js';
export { defineConfig } from './config/define.js';
export { validateConfig } from './config/validate.js';
export { loadConfigFile } from './config/load.js';
export { DEFAULTS } from './config/defaults.js';
export type * from './config/types.js';
export type * from './stats.js';
export type { HookRequest, HookDecision, HookFn } from './hooks/types.js';
export type * from './traces.js';
export { SwitchyardError, ConfigError, BindError, DataPlaneError, ClosedError, NotFoundError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { planChange, formatPlan } from './plan.js';
export type { PlanChange, PlanOptions, PlanReport, PlanShare } from './plan.js';
export { startAdmin } from './admin/server.js';
export type { AdminServer } from './admin/server.js';
export { HealthMonitor } from './health/monitor.js';
export type { BackendCheckState, HealthChange } from './health/monitor.js';
export { consoleLogger, jsonLines, prettyLines, silent } from './log.js';
export type { Logger, LogLevel, LineOptions } from './log.js';
export { definePolicy, canary, adaptiveWeights, autoDrain, ManualClock, realClock, SignalReader, SignalWindow, mergeSignals, quantile } from './policy/index.js';
export type {
  Policy,
  PolicyContext,
  PolicyDecision,
  PolicyStatus,
  Clock,
  Scheduled,
  BackendSignal,
  Latency,
  LatencySource,
  DecisionCount,
  CanaryOptions,
  CanaryState,
  AdaptiveWeightsOptions,
  AutoDrainOptions,
} from './policy/index.js';

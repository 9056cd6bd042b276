/** Switchyard's public API. */
export { Switchyard } from './switchyard.js';
export type { StartOptions, CloseOptions, BoundAddress, SwitchyardEvents } from './switchyard.js';
export type { BackendEvent } from './events.js';
export { defineConfig } from './config/define.js';
export { validateConfig } from './config/validate.js';
export { loadConfigFile } from './config/load.js';
export { DEFAULTS } from './config/defaults.js';
export type * from './config/types.js';
export type * from './stats.js';
export { SwitchyardError, ConfigError, BindError, DataPlaneError, ClosedError } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { planChange, formatPlan } from './plan.js';
export type { PlanChange, PlanOptions, PlanReport, PlanShare } from './plan.js';
export { jsonLines, silent } from './log.js';
export type { Logger } from './log.js';

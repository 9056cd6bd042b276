/** Active health checking: configuration types, probes and the scheduler. */
export type * from './types.js';
export { probe, statusAccepted, type CheckResult } from './probes.js';
export { HealthMonitor, type BackendCheckState, type HealthChange, type HealthMonitorOptions } from './monitor.js';

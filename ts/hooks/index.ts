/** Opt-in hooks: user functions the data plane asks, within a budget, for the rare decision that needs code. */
export { HookRegistry } from './registry.js';
export type { ReplyFn, ProblemFn } from './registry.js';
export { toDecision } from './decision.js';
export type { HookRequest, HookDecision, HookFn } from './types.js';

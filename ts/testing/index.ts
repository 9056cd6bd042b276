/**
 * Switchyard's test kit (`switchyard-lb/testing`): fake backends, traffic, a controllable clock
 * for control loops, and assertions on where requests went and on policy decisions. Works under
 * vitest and node:test alike. See docs/policy.md.
 */
export { startKit } from './kit.js';
export type { Kit, KitOptions, KitBackend, AdminReply } from './kit.js';
export { fakeBackend, BACKEND_HEADER } from './fake-backend.js';
export type { FakeBackend, FakeBackendOptions, Behaviour } from './fake-backend.js';
export { httpRequests, tcpConnections } from './traffic.js';
export type { TrafficResult, TrafficOptions } from './traffic.js';
export { assertShare, assertOnly, assertDecision, findDecisions, matchesDecision, shareOf } from './assert.js';
export type { DecisionMatch } from './assert.js';
export { assertTrace, findTraces, matchesTrace, formatTrace } from './traces.js';
export type { TraceMatch, KitTrace, KitCandidate } from './traces.js';
export { waitFor } from './wait.js';
export { ManualClock } from '../policy/clock.js';

/** The admin HTTP API, Prometheus metrics and dashboard (see docs/admin.md). */
export { startAdmin } from './server.js';
export type { AdminServer, AdminOptions } from './server.js';
export type { AdminTarget } from './target.js';
export { metricsText } from './metrics.js';
export { openapiDocument } from './openapi.js';

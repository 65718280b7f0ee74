export type { DashboardHandler, DashboardOptions } from './handler.js';
export { createDashboard, DASHBOARD_CSP, DASHBOARD_DEFAULTS } from './handler.js';
export type { NodeHandler } from './node.js';
export { toNodeHandler } from './node.js';

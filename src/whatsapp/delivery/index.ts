// Delivery records of WhatsApp sends: the read model and the status webhooks applied to it.
export type {
  DeliveryStatusOutcome,
  WhatsAppDelivery,
  WhatsAppDeliveryAttempt,
  WhatsAppDeliveryStatus,
  WhatsAppDeliveryStore,
} from './delivery.js';
export { applyDeliveryStatuses, getDelivery } from './delivery.js';
export type {
  DeliveryReconciler,
  DeliveryReconcilerOptions,
  ReconcileSummary,
} from './reconciler.js';
export { createDeliveryReconciler, DELIVERY_RECONCILER_DEFAULTS } from './reconciler.js';

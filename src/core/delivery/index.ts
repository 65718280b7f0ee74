// Delivery records: a generic store of logical messages, their attempts and monotonic statuses.
export {
  applyReport,
  checkAttempt,
  checkReport,
  DELIVERY_STORE_DEFAULTS,
  newAttempt,
} from './delivery-args.js';
export type {
  ApplyStatusResult,
  BeginDeliveryResult,
  DeliveryAttempt,
  DeliveryAttemptInput,
  DeliveryRecord,
  DeliveryStatusReport,
  DeliveryStore,
  RecordAttemptResult,
} from './delivery-types.js';
export { foldByRank, outranks, type RankedPoint } from './status-rank.js';

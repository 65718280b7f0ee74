// Delivery records: a generic store of logical messages, their attempts and monotonic statuses.
export {
  applyReport,
  checkAttempt,
  checkAttemptOptions,
  checkBeginOptions,
  checkClaimOptions,
  checkReport,
  checkReschedule,
  DELIVERY_STORE_DEFAULTS,
  newAttempt,
} from './delivery-args.js';
export type {
  ApplyStatusResult,
  BeginDeliveryOptions,
  BeginDeliveryResult,
  ClaimDueOptions,
  ClaimedDelivery,
  DeliveryAttempt,
  DeliveryAttemptInput,
  DeliveryRecord,
  DeliveryStatusReport,
  DeliveryStore,
  RecordAttemptOptions,
  RecordAttemptResult,
} from './delivery-types.js';
export { foldByRank, outranks, type RankedPoint } from './status-rank.js';

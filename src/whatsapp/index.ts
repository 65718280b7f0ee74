export type { WhatsAppClassifierOptions, WhatsAppCodeRule } from './classify.js';
export {
  classifyWhatsAppError,
  createWhatsAppClassifier,
  WHATSAPP_ERROR_CODES,
  whatsAppCodeRule,
} from './classify.js';
export type {
  AcceptedSendResult,
  HeldSendResult,
  ResendOptions,
  ResendResult,
  SendOptions,
  SendResult,
  WhatsAppClient,
  WhatsAppClientOptions,
} from './client.js';
export { createWhatsAppClient } from './client.js';
export type {
  DeliveryReconciler,
  DeliveryReconcilerOptions,
  DeliveryStatusOutcome,
  ReconcileSummary,
  WhatsAppDelivery,
  WhatsAppDeliveryAttempt,
  WhatsAppDeliveryStatus,
  WhatsAppDeliveryStore,
} from './delivery/index.js';
export {
  applyDeliveryStatuses,
  createDeliveryReconciler,
  getDelivery,
} from './delivery/index.js';
export type { DeliveryMetricsOptions, DeliverySnapshot } from './delivery-metrics.js';
export { whatsappDeliveryMetrics } from './delivery-metrics.js';
export type {
  CloudApiEndpointOptions,
  CloudMessage,
  EndpointRequest,
  WasenderEndpointOptions,
  WasenderMessage,
  WhatsAppEndpoint,
} from './endpoints.js';
export { cloudApiEndpoint, wasenderEndpoint } from './endpoints.js';
export type { HeaderRecord, WhatsAppErrorFields } from './errors.js';
export {
  isWebhookPayloadError,
  isWhatsAppApiError,
  WebhookPayloadError,
  WhatsAppApiError,
} from './errors.js';
export type {
  MessageHeldEvent,
  MessageResentEvent,
  MessageStatusEvent,
  MessageStuckEvent,
  WhatsAppEvent,
  WhatsAppEventListener,
} from './events.js';
export { throughputLimits, WHATSAPP_RATE_LIMITS } from './rate-limits.js';
export type {
  HeadersLike,
  RawBody,
  VerificationQuery,
  WebhookResponse,
} from './signature.js';
export {
  handleVerificationRequest,
  headerValue,
  signWebhookBody,
  verifyWasenderSignature,
  verifyWebhookSignature,
} from './signature.js';
export type {
  AccountOrigin,
  AccountUpdate,
  InboundMessage,
  MalformedWebhookItem,
  MessageEcho,
  MessageStatus,
  MessagingTier,
  ParsedWebhook,
  ParseWebhookOptions,
  PhoneNumberQualityUpdate,
  StatusPoint,
  StatusPricing,
  StatusUpdate,
  TemplateStatusUpdate,
  UnknownUpdate,
  WebhookErrorDetail,
  WebhookErrorNotice,
  WebhookOrigin,
  WebhookUpdate,
} from './webhook.js';
export { parseWebhook, reduceStatus, webhookUpdates } from './webhook.js';
export type {
  ParsedDelivery,
  WebhookHandler,
  WebhookHandlerOptions,
  WebhookRequest,
  WebhookResult,
} from './webhook-handler.js';
export { createWebhookHandler, whatsAppDedupeKey } from './webhook-handler.js';

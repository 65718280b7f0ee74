export type { WhatsAppClassifierOptions, WhatsAppCodeRule } from './classify.js';
export {
  classifyWhatsAppError,
  createWhatsAppClassifier,
  usageRetryAfterMs,
  WHATSAPP_ERROR_CODES,
  whatsAppCodeRule,
} from './classify.js';
export type {
  SendOptions,
  SendResult,
  WhatsAppClient,
  WhatsAppClientOptions,
} from './client.js';
export { createWhatsAppClient, WHATSAPP_CLIENT_DEFAULTS } from './client.js';
export type {
  CloudApiEndpointOptions,
  CloudMessage,
  EndpointRequest,
  WasenderEndpointOptions,
  WasenderMessage,
  WhatsAppEndpoint,
} from './endpoints.js';
export { CLOUD_API_DEFAULTS, cloudApiEndpoint, wasenderEndpoint } from './endpoints.js';
export type { HeaderRecord, WhatsAppErrorFields } from './errors.js';
export {
  isWebhookPayloadError,
  isWhatsAppApiError,
  parseErrorBody,
  WebhookPayloadError,
  WhatsAppApiError,
} from './errors.js';
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
  timingSafeEqual,
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
export {
  PARSE_WEBHOOK_DEFAULTS,
  parseWebhook,
  reduceStatus,
  STATUS_RANK,
  webhookUpdates,
} from './webhook.js';
export type {
  ParsedDelivery,
  WebhookHandler,
  WebhookHandlerOptions,
  WebhookRequest,
  WebhookResult,
} from './webhook-handler.js';
export {
  createWebhookHandler,
  WEBHOOK_HANDLER_DEFAULTS,
  whatsAppDedupeKey,
} from './webhook-handler.js';

export type { WhatsAppClassifierOptions, WhatsAppCodeRule } from './classify.js';
export {
  classifyWhatsAppError,
  createWhatsAppClassifier,
  usageRetryAfterMs,
  WHATSAPP_ERROR_CODES,
  whatsAppCodeRule,
} from './classify.js';
export type { HeaderRecord, WhatsAppErrorFields } from './errors.js';
export { isWhatsAppApiError, parseErrorBody, WhatsAppApiError } from './errors.js';

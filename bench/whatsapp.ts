import { createHmac, timingSafeEqual } from 'node:crypto';
import { classify } from '../src/index.js';
import {
  classifyWhatsAppError,
  parseWebhook,
  verifyWebhookSignature,
  WhatsAppApiError,
} from '../src/whatsapp/index.js';
import { type BenchSuite, measure, ratioTable } from './harness.js';

const SECRET = 'bench-app-secret';

/** A realistic status webhook: 20 statuses for one phone number. */
const BODY = JSON.stringify({
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
            statuses: Array.from({ length: 20 }, (_, i) => ({
              id: `wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NTM5${String(i).padStart(4, '0')}`,
              status: i % 3 === 0 ? 'read' : 'delivered',
              timestamp: String(1_750_263_773 + i),
              recipient_id: `4915112345${String(i).padStart(3, '0')}`,
              conversation: { id: 'CONVERSATION_ID', origin: { type: 'utility' } },
              pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
            })),
          },
        },
      ],
    },
  ],
});
const BYTES = Buffer.from(BODY, 'utf8');
const MAC = createHmac('sha256', SECRET).update(BYTES).digest('hex');
const HEADER = `sha256=${MAC}`;

export const whatsappSuite: BenchSuite = {
  name: 'whatsapp',
  async run({ timeMs }) {
    const signatures = await measure(
      {
        'node:crypto createHmac + timingSafeEqual': () => {
          const mac = createHmac('sha256', SECRET).update(BYTES).digest();
          return timingSafeEqual(mac, Buffer.from(MAC, 'hex'));
        },
        'retrykit verifyWebhookSignature': () => verifyWebhookSignature(BYTES, HEADER, SECRET),
      },
      { timeMs },
    );
    const parsing = await measure(
      {
        'JSON.parse': () => JSON.parse(BODY),
        'retrykit parseWebhook': () => parseWebhook(BODY),
      },
      { timeMs },
    );
    const throttle = WhatsAppApiError.fromResponse(400, {
      error: { message: '(#130429) Rate limit hit', type: 'OAuthException', code: 130429 },
    });
    const classifying = await measure(
      {
        'core classify (HTTP status only)': () => classify(throttle),
        'retrykit classifyWhatsAppError': () => classifyWhatsAppError(throttle),
      },
      { timeMs },
    );
    return [
      '## WhatsApp webhooks and errors',
      '',
      `Signature check of a ${BYTES.length}-byte status webhook (20 statuses). The synchronous`,
      'node:crypto HMAC is the floor; retrykit runs it too on Node, behind an async API that also',
      'runs on Web Crypto in workers.',
      '',
      ratioTable(signatures, 'node:crypto createHmac + timingSafeEqual'),
      '',
      'Parsing the same webhook into typed, validated updates, against a bare `JSON.parse`.',
      '',
      ratioTable(parsing, 'JSON.parse'),
      '',
      'Classifying a 130429 (HTTP 400): the core classifier reads only the status (and calls it',
      'permanent); the WhatsApp one reads the code.',
      '',
      ratioTable(classifying, 'core classify (HTTP status only)'),
    ].join('\n');
  },
};

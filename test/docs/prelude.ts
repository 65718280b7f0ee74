import type { ConnectionOptions, Processor, Queue } from 'bullmq';
import type { Express, Request } from 'express';
import type { Redis } from 'ioredis';
import type { DeadLetterQueue, MemoryTokenBucket, MetricsHandle } from '../../src/index.js';
import type { RedisTokenBucket } from '../../src/redis/index.js';
import type { InboundMessage, StatusUpdate, WhatsAppClient } from '../../src/whatsapp/index.js';

// The names the docs' `ts` blocks use without declaring them: the reader's own application
// around the snippet. test/docs.test.ts declares each member below as a global of the same
// name and type. Every type is what a real application would have; none is `any`.

/** The payload of a webhook job in the durable-retries examples: the application's own type. */
interface AppWebhookBody {
  readonly object: 'whatsapp_business_account';
  readonly entry: readonly unknown[];
}

/** A send request of the application, with the ID it deduplicates on. */
interface AppSendRequest {
  readonly messageId: string;
  readonly to: string;
  readonly text: string;
}

/** An outgoing message of the application (rate-limiting examples). */
interface AppOutgoingMessage {
  readonly to: string;
  readonly text: string;
}

/** An order of the application's shop. */
interface AppOrder {
  readonly id: string;
  readonly phone: string;
}

/** Type names the blocks use without declaring them. */
export interface DocTypes {
  WebhookBody: AppWebhookBody;
  SendRequest: AppSendRequest;
}

/** Values the blocks use without declaring them. */
export interface DocGlobals {
  // Configuration and secrets.
  accessToken: string;
  apiKey: string;
  appSecret: string;
  webhookSecret: string;
  phoneNumberId: string;
  phoneNumberIds: ReadonlyMap<string, string>;
  url: string;
  verifyToken: string;

  // The application's infrastructure.
  app: Express;
  connection: ConnectionOptions;
  db: {
    save(id: string, value: string): Promise<void>;
    load(id: string): Promise<string>;
  };
  log: {
    error(fields: Record<string, unknown>, message: string): void;
  };
  pager: {
    trigger(summary: string): Promise<void>;
    resolve(summary: string): Promise<void>;
  };
  queue: Queue;
  redis: Redis;

  // Request-scoped values.
  body: AppWebhookBody;
  id: string;
  inbound: InboundMessage;
  message: AppOutgoingMessage;
  messageId: string;
  order: AppOrder;
  orderDigest: string;
  payload: string;
  rawBody: Buffer;
  req: Request;
  request: AppSendRequest;
  signal: AbortSignal;

  // The application's functions.
  flaky: () => Promise<string>;
  handleWebhook: Processor<AppWebhookBody>;
  requeue: (message: AppOutgoingMessage, options: { delayMs: number }) => Promise<void>;
  saveMessage: (message: InboundMessage) => Promise<void>;
  send: (request: AppSendRequest) => Promise<{ messageId: string }>;
  sendMessage: (phoneNumberId: string, message: AppOutgoingMessage) => Promise<Response>;
  sendOrderUpdate: (order: AppOrder) => Promise<{ messageId: string }>;

  // retrykit objects built in an earlier block of the same page.
  current: StatusUpdate | undefined;
  update: StatusUpdate;
  dlq: DeadLetterQueue<AppWebhookBody>;
  metrics: MetricsHandle;
  perNumber: MemoryTokenBucket;
  redisPerNumber: RedisTokenBucket;
  whatsapp: WhatsAppClient;
}

// Sends 300 WhatsApp-style messages through a per-number token bucket, against a loopback
// "Cloud API" that allows only 40 messages/s and answers 130429 (HTTP 400) above that.
// The bucket is set too high on purpose (60/s): in adaptive mode each 130429 that `retry`
// reports slows the number down, and the sends settle under the server's limit.
//
//   npx tsx examples/rate-limit.ts
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Classification,
  composeClassifiers,
  createMemoryTokenBucket,
  createRetry,
} from 'retrykit';
import { WHATSAPP_RATE_LIMITS } from 'retrykit/whatsapp';

// --- A fake Cloud API: 40 messages/s per phone number, counted per one-second window. ------
const SERVER_LIMIT_PER_SECOND = 40;
let windowStart = Date.now();
let inWindow = 0;
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      inWindow = 0;
    }
    res.setHeader('content-type', 'application/json');
    if (++inWindow > SERVER_LIMIT_PER_SECOND) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: { message: '(#130429) Rate limit hit', code: 130429 } }));
      return;
    }
    res.end(JSON.stringify({ messages: [{ id: `wamid.${now}.${inWindow}` }] }));
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

// --- The sender. -----------------------------------------------------------------------------
class WhatsAppError extends Error {
  constructor(readonly code: number) {
    super(`WhatsApp error ${code}`);
  }
}

/** 130429 comes back as HTTP 400: classify on the error code, not the status. */
const classifyWhatsApp = (error: unknown): Classification | undefined =>
  error instanceof WhatsAppError && error.code === 130429
    ? { retryable: true, reason: 'rate_limited' }
    : undefined;

const phoneNumberId = '106540352242922';
const perNumber = createMemoryTokenBucket({
  ...WHATSAPP_RATE_LIMITS.perPhoneNumber,
  refillPerSecond: 60,
  adaptive: { recoveryMs: 20_000 },
});
const sendWithRetry = createRetry({
  maxAttempts: 8,
  classify: composeClassifiers(classifyWhatsApp),
  backoff: { initialDelayMs: 200, maxDelayMs: 2_000 },
});

let throttles = 0;
const feedback = perNumber.feedback(phoneNumberId);
const countingFeedback = {
  throttled: (c: Classification) => {
    throttles++;
    feedback.throttled(c);
  },
  succeeded: () => feedback.succeeded(),
};

async function send(to: string, text: string): Promise<string> {
  return sendWithRetry(
    async ({ signal }) => {
      await perNumber.acquire(phoneNumberId, 1, { signal, maxWaitMs: 30_000 });
      const res = await fetch(`http://127.0.0.1:${port}/v21.0/${phoneNumberId}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          messaging_product: 'whatsapp',
          to,
          type: 'text',
          text: { body: text },
        }),
        signal,
      });
      const body = (await res.json()) as { error?: { code: number }; messages?: { id: string }[] };
      if (body.error) throw new WhatsAppError(body.error.code);
      return body.messages?.[0]?.id ?? '';
    },
    { feedback: countingFeedback },
  );
}

const started = Date.now();
const ids = await Promise.all(
  Array.from({ length: 300 }, (_, i) =>
    send(`4915100000${String(i).padStart(3, '0')}`, `hello ${i}`),
  ),
);
const seconds = (Date.now() - started) / 1000;
server.close();

console.log(`sent ${ids.filter(Boolean).length} messages in ${seconds.toFixed(1)} s`);
console.log(`130429 throttles reported to the limiter: ${throttles}`);
console.log(
  `effective rate now: ${perNumber.effectiveRefillPerSecond(phoneNumberId).toFixed(1)}/s ` +
    `(configured 60/s, server allows ${SERVER_LIMIT_PER_SECOND}/s)`,
);

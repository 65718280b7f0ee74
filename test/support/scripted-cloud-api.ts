import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake answers one request: a wamid, or a Cloud API failure. */
export type ScriptedAnswer = 'accept' | 503 | 130429 | 131026 | 190;

/** One request the fake answered, in arrival order. */
export interface ScriptedRequest {
  readonly to: string;
  /** 1-based: the how-many-th request for this recipient. */
  readonly n: number;
  readonly answer: ScriptedAnswer;
  /** The wamid, when accepted. */
  readonly wamid?: string;
}

/** A loopback fake of the Cloud API's `POST /{version}/{phoneNumberId}/messages`. */
export interface ScriptedCloudApi {
  /** Base URL on 127.0.0.1 (the client's `baseUrl`). */
  readonly url: string;
  /** Every request, in arrival order. */
  readonly log: readonly ScriptedRequest[];
  close(): Promise<void>;
}

/** HTTP status, Meta's code and message of each failure. */
const FAILURES: Record<
  Exclude<ScriptedAnswer, 'accept'>,
  { status: number; code: number; message: string }
> = {
  503: { status: 503, code: 2, message: 'Service temporarily unavailable' },
  130429: { status: 400, code: 130429, message: 'Rate limit hit' },
  131026: { status: 400, code: 131026, message: 'Message undeliverable' },
  190: { status: 401, code: 190, message: 'Access token has expired' },
};

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts a fake Cloud API on 127.0.0.1 that answers each request as `script(to, n)` says
 * (`n`: the request's number for that recipient, from 1), and logs every answer. Accepted
 * messages get the wamid `wamid.<to>`.
 */
export async function startScriptedCloudApi(
  script: (to: string, n: number) => ScriptedAnswer,
): Promise<ScriptedCloudApi> {
  const log: ScriptedRequest[] = [];
  const seen = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    const { to } = JSON.parse(await readBody(req)) as { to: string };
    const n = (seen.get(to) ?? 0) + 1;
    seen.set(to, n);
    const answer = script(to, n);
    res.setHeader('content-type', 'application/json');
    if (answer === 'accept') {
      const wamid = `wamid.${to}`;
      log.push({ to, n, answer, wamid });
      res.writeHead(200).end(
        JSON.stringify({
          messaging_product: 'whatsapp',
          contacts: [{ input: to, wa_id: to }],
          messages: [{ id: wamid }],
        }),
      );
      return;
    }
    log.push({ to, n, answer });
    const { status, code, message } = FAILURES[answer];
    res.writeHead(status).end(
      JSON.stringify({
        error: { message: `(#${code}) ${message}`, type: 'OAuthException', code },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

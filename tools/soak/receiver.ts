/**
 * The soak's webhook receiver process: node:http in front of `createWebhookHandler` (wired by
 * wiring.ts). The soak SIGKILLs and restarts it on the same port.
 * Usage: node --import tsx --import ./tools/lua-loader.mjs tools/soak/receiver.ts <port>
 */
import { createServer, type IncomingMessage } from 'node:http';
import { type ChildMessage, readProcessConfig } from './config.js';
import { createReceiverWiring } from './wiring.js';

const port = Number(process.argv[2]);
const config = readProcessConfig();
const { handle, close } = createReceiverWiring(config, 'receiver');

const readRaw = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

const server = createServer(async (req, res) => {
  try {
    const result = await handle({ body: await readRaw(req), headers: req.headers });
    res.writeHead(result.status, { 'content-type': 'text/plain', ...result.headers });
    res.end(result.body);
  } catch {
    res.writeHead(500).end();
  }
});
await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
const ready: ChildMessage = { type: 'ready' };
process.send?.(ready);

process.on('SIGTERM', () => {
  server.close();
  void close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));

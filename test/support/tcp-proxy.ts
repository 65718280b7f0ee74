import { afterAll } from 'vitest';
import { startTcpProxy as startProxy, type TcpProxy } from '../../tools/support/tcp-proxy.js';

export type { TcpProxy } from '../../tools/support/tcp-proxy.js';

const proxies: TcpProxy[] = [];

/** Starts a proxy on a free loopback port in front of `127.0.0.1:targetPort`; closed after the file. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const proxy = await startProxy(targetPort);
  proxies.push(proxy);
  return proxy;
}

afterAll(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

import { StoreUnavailableError } from '../core/errors.js';
import { assertInteger, showValue } from '../core/validate.js';
import { runCommand } from './script.js';

/**
 * Make a write wait for replicas: after it, Redis `WAIT replicas timeoutMs` on the master that
 * holds the key, and a `StoreUnavailableError` when fewer replicas than `replicas` had it
 * within `timeoutMs`.
 */
export interface WaitForReplicas {
  /** Replicas that must have the write before it counts as done (≥ 1). */
  readonly replicas: number;
  /**
   * Longest wait for them, in milliseconds (≥ 1; Redis's `WAIT … 0`, for ever, is refused so
   * that a shard without replicas can't hang callers).
   */
  readonly timeoutMs: number;
}

/** The slice of an ioredis client (`Redis` or `Cluster`) that `WAIT` needs. */
interface CallClient {
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
}

/** The slice of an ioredis `Cluster` that finds the master of a slot. */
interface ClusterClient extends CallClient {
  readonly slots: readonly (readonly string[] | undefined)[];
  nodes(role: 'master'): readonly (CallClient & {
    readonly options: { readonly host?: string; readonly port?: number };
  })[];
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

/**
 * The Redis Cluster slot of `key`: CRC16 (XMODEM) of its UTF-8 bytes, or of its hash tag (what
 * lies between the first `{` and the next `}`, when not empty), modulo 16,384.
 */
export function keySlot(key: string): number {
  let bytes = new TextEncoder().encode(key);
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % 16_384;
}

function isCluster(client: CallClient): client is ClusterClient {
  const c = client as Partial<ClusterClient>;
  return typeof c.nodes === 'function' && Array.isArray(c.slots);
}

/**
 * Validates `waitForReplicas` and returns the function that waits for a write to `key`
 * (`undefined` when the option is off). On an ioredis `Cluster` `WAIT` goes to the master the
 * client knows for the key's slot (`WAIT` has no key, so the client can't route it); on a
 * single `Redis` to that server.
 */
export function replicaWaiter(
  client: unknown,
  option: WaitForReplicas | undefined,
  commandTimeoutMs: number,
): ((key: string, operation: string) => Promise<void>) | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== 'object' || option === null) {
    throw new TypeError(
      `waitForReplicas must be an object { replicas, timeoutMs }, got ${showValue(option)}`,
    );
  }
  const replicas = assertInteger('waitForReplicas.replicas', option.replicas, 1);
  const timeoutMs = assertInteger('waitForReplicas.timeoutMs', option.timeoutMs, 1);
  if (typeof (client as Partial<CallClient>).call !== 'function') {
    throw new TypeError(
      'waitForReplicas needs an ioredis client (Redis or Cluster) with call(), to send WAIT',
    );
  }
  const callClient = client as CallClient;
  const limit = { timeoutMs: commandTimeoutMs === 0 ? 0 : commandTimeoutMs + timeoutMs };
  const nodeFor = (key: string): CallClient => {
    if (!isCluster(callClient)) return callClient;
    const slot = keySlot(key);
    const owner = callClient.slots[slot]?.[0];
    const node = callClient
      .nodes('master')
      .find((n) => `${n.options.host}:${n.options.port}` === owner);
    if (node === undefined) throw new Error(`no master known for slot ${slot} (key ${key})`);
    return node;
  };
  return async (key, operation) => {
    const acked = await runCommand({ operation, ...limit }, () =>
      nodeFor(key).call('WAIT', replicas, timeoutMs),
    );
    if (typeof acked !== 'number' || acked < replicas) {
      throw new StoreUnavailableError(
        operation,
        new Error(
          `${showValue(acked)} of ${replicas} replicas acknowledged the write within ${timeoutMs} ms (WAIT)`,
        ),
      );
    }
  };
}

/**
 * The Redis commands retrykit's adapters use. ioredis clients (`Redis`, `Cluster`) satisfy it
 * as they are; for node-redis, see {@link fromNodeRedis}.
 */
export interface RedisClientLike {
  /** `EVALSHA sha numkeys key… arg…` */
  evalsha(sha: string, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /** `EVAL script numkeys key… arg…` */
  eval(script: string, numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  /**
   * `SET key value PX ms NX`, answering `'OK'` or `null`. Optional: where a single plain command
   * does the job (a first idempotency claim, `markOnce`), adapters use it instead of a script,
   * which costs Redis several times less; without it they run the script.
   */
  set?(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<unknown>;
}

/** The slice of a node-redis v4+ client that {@link fromNodeRedis} needs. */
export interface NodeRedisLike {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  set(key: string, value: string, options: { PX: number; NX: true }): Promise<unknown>;
}

/** Adapts a node-redis client to {@link RedisClientLike}. */
export function fromNodeRedis(client: NodeRedisLike): RedisClientLike {
  const split = (numKeys: number, rest: (string | number)[]) => ({
    keys: rest.slice(0, numKeys).map(String),
    arguments: rest.slice(numKeys).map(String),
  });
  return {
    evalsha: (sha, numKeys, ...rest) => client.evalSha(sha, split(numKeys, rest)),
    eval: (script, numKeys, ...rest) => client.eval(script, split(numKeys, rest)),
    set: (key, value, _px, ms) => client.set(key, value, { PX: ms, NX: true }),
  };
}

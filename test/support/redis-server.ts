// The helpers live in tools/support/ so that the soak (tools/soak/) can start servers without
// loading vitest; tests keep importing them from here.
export {
  freePort,
  hasRedisServer,
  type RedisServer,
  type RedisServerOptions,
  startRedisServer,
} from '../../tools/support/redis-server.js';

import {
  createPostgresDeadLetterQueue,
  createPostgresDeliveryStore,
  createPostgresIdempotencyStore,
} from '../src/postgres/index.js';
import { deadLetterContract, LEASE_MS } from './support/dead-letter-contract.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';
import { idempotencyStoreContract } from './support/idempotency-contract.js';
import {
  advanceDeliveryTime,
  advancePostgresTime,
  describePostgres,
  passPostgresTime,
  useTestSchema,
} from './support/postgres.js';

describePostgres('postgres', () => {
  const db = useTestSchema('contracts');

  idempotencyStoreContract('postgres', async () => {
    const { idempotency } = await db.tables('c');
    return {
      store: createPostgresIdempotencyStore(db.pool, { schema: db.schema, table: idempotency }),
      advance: (ms) => advancePostgresTime(db.pool, db.schema, idempotency, ms),
    };
  });

  idempotencyStoreContract('postgres, statements not prepared', async () => {
    const { idempotency } = await db.tables('u');
    return {
      store: createPostgresIdempotencyStore(db.pool, {
        schema: db.schema,
        table: idempotency,
        preparedStatements: false,
      }),
      advance: (ms) => advancePostgresTime(db.pool, db.schema, idempotency, ms),
    };
  });

  deadLetterContract('postgres', async ({ onEvent }) => {
    const { deadLetters } = await db.tables('d');
    const dlq = createPostgresDeadLetterQueue<{ n: number; text?: string }>(db.pool, {
      schema: db.schema,
      table: deadLetters,
      ...(onEvent === undefined ? {} : { onEvent }),
    });
    return {
      dlq,
      expireLeases: () => passPostgresTime(db.pool, db.schema, deadLetters, LEASE_MS),
      passTime: (ms) => passPostgresTime(db.pool, db.schema, deadLetters, ms),
    };
  });

  const DELIVERY_TTL = 60_000;
  for (const preparedStatements of [true, false]) {
    deliveryStoreContract(
      `postgres${preparedStatements ? '' : ', statements not prepared'}`,
      async () => {
        const { deliveries, deliveryAttempts } = await db.tables(preparedStatements ? 'p' : 'q');
        return {
          store: createPostgresDeliveryStore(db.pool, {
            schema: db.schema,
            table: deliveries,
            attemptsTable: deliveryAttempts,
            recordTtlMs: DELIVERY_TTL,
            preparedStatements,
          }),
          advance: (ms) => advanceDeliveryTime(db.pool, db.schema, deliveries, ms),
          recordTtlMs: DELIVERY_TTL,
        };
      },
    );
  }
});

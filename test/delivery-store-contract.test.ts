import { createMemoryDeliveryStore } from '../src/index.js';
import { createManualClock } from '../src/testing/index.js';
import { deliveryStoreContract } from './support/delivery-store-contract.js';

const TTL = 60_000;

deliveryStoreContract('memory', async () => {
  const clock = createManualClock(1_000_000);
  return {
    store: createMemoryDeliveryStore({ maxEntries: 1_000, recordTtlMs: TTL, clock }),
    advance: (ms) => clock.advance(ms),
    recordTtlMs: TTL,
  };
});

-- retrykit: idempotency keys, for createPostgresIdempotencyStore and idempotentTransaction.
--
-- A row per claimed key (kind 'claim') and per markOnce mark (kind 'mark'). A claim is
-- 'in_progress' under the fencing token `token` until `expires_at` (its lease), or 'completed'
-- with `result` (as the store's serializer wrote it) until `expires_at` (its result TTL).
-- Times are the database's (clock_timestamp()). An expired row counts as absent; delete
-- expired rows in batches with the store's deleteExpired().
--
-- The names below are the defaults; createSchema() runs this file with the names you choose.
CREATE TABLE IF NOT EXISTS retrykit_idempotency (
  kind text NOT NULL CHECK (kind IN ('claim', 'mark')),
  key text NOT NULL,
  state text NOT NULL CHECK (state IN ('in_progress', 'completed', 'marked')),
  token text,
  fingerprint text,
  result text,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (kind, key)
);

CREATE INDEX IF NOT EXISTS retrykit_idempotency_expires_at_idx
  ON retrykit_idempotency (expires_at);

-- retrykit: a dead-letter queue, for createPostgresDeadLetterQueue.
--
-- `entry` is the whole DeadLetterEntry as JSON text (type json keeps it exactly as written);
-- `reason` repeats entry.reason for the list filter. `seq` orders entries as they were added
-- and is the list cursor. A redrive's claim is `lease_token` until `lease_until`; a failed
-- redrive's not-before time is `lease_until` with no token. Times are the database's.
--
-- The names below are the defaults; createSchema() runs this file with the names you choose.
CREATE TABLE IF NOT EXISTS retrykit_dead_letters (
  seq bigint GENERATED ALWAYS AS IDENTITY,
  id text PRIMARY KEY,
  reason text NOT NULL,
  entry json NOT NULL,
  lease_token text,
  lease_until timestamptz,
  UNIQUE (seq)
);

CREATE INDEX IF NOT EXISTS retrykit_dead_letters_reason_seq_idx
  ON retrykit_dead_letters (reason, seq);

-- retrykit: closed-loop delivery records, for createPostgresDeliveryStore.
--
-- One row per logical message in retrykit_deliveries, one row per physical send (attempt) in
-- retrykit_delivery_attempts, found by its external id (the WhatsApp wamid). `payload` is the
-- message as the store's serializer wrote it, `sender` who sends it (a WhatsApp phone number
-- id), if given. A record is in the due index while `due_at` is set; `lease_token` changes
-- with every write of `due_at`. `attempt_ids` lists the record's attempts in order (the fence
-- of recordAttempt's ifAttempts). Times of the database's clock
-- (clock_timestamp()) are timestamptz; times reports carry (`at_ms`, `status_at_ms`,
-- `status_times`) are milliseconds since the epoch, exactly as given. An attempt's `status` only
-- moves to a higher `rank`; `status_times` keeps the earliest time of every status reported,
-- and `sent_ms`, `delivered_ms`, `read_ms`, `failed_ms` repeat WhatsApp's for SQL over them.
-- A record whose `expires_at` has passed counts as absent; delete such rows in batches with the
-- store's deleteExpired() (attempts go with their record).
--
-- The names below are the defaults; createSchema() runs this file with the names you choose.
CREATE TABLE IF NOT EXISTS retrykit_deliveries (
  key text PRIMARY KEY,
  payload text NOT NULL,
  alias text,
  sender text,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  due_at timestamptz,
  lease_token text NOT NULL,
  attempt_ids text[] NOT NULL DEFAULT '{}'
);

CREATE INDEX IF NOT EXISTS retrykit_deliveries_due_at_idx
  ON retrykit_deliveries (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS retrykit_deliveries_alias_idx
  ON retrykit_deliveries (alias) WHERE alias IS NOT NULL;
CREATE INDEX IF NOT EXISTS retrykit_deliveries_expires_at_idx
  ON retrykit_deliveries (expires_at);

CREATE TABLE IF NOT EXISTS retrykit_delivery_attempts (
  key text NOT NULL REFERENCES retrykit_deliveries (key) ON DELETE CASCADE,
  seq integer NOT NULL,
  attempt_id text NOT NULL,
  external_id text,
  at_ms bigint NOT NULL,
  status text,
  rank integer NOT NULL DEFAULT 0,
  status_at_ms bigint,
  status_times jsonb NOT NULL DEFAULT '{}',
  errors json NOT NULL DEFAULT '[]',
  sent_ms bigint GENERATED ALWAYS AS ((status_times ->> 'sent')::bigint) STORED,
  delivered_ms bigint GENERATED ALWAYS AS ((status_times ->> 'delivered')::bigint) STORED,
  read_ms bigint GENERATED ALWAYS AS ((status_times ->> 'read')::bigint) STORED,
  failed_ms bigint GENERATED ALWAYS AS ((status_times ->> 'failed')::bigint) STORED,
  PRIMARY KEY (key, seq),
  UNIQUE (key, attempt_id)
);

CREATE INDEX IF NOT EXISTS retrykit_delivery_attempts_external_id_idx
  ON retrykit_delivery_attempts (external_id) WHERE external_id IS NOT NULL;

-- Token bucket, one atomic step: refill the bucket up to now, then take the tokens asked for
-- if they are there; a refusal takes (and writes) nothing. The maths is `refill` and
-- `msUntil` of src/core/rate-limit/token-bucket-math.ts, step for step.
--
-- KEYS[1]  the bucket, a string "<tokens> <latest time seen, ms>" (with a throttle's rate and
--          time after them while one slows the key: token-bucket-adaptive.lua). It expires
--          once the bucket would be full again and unthrottled, the state a missing key stands
--          for.
-- KEYS[2]  the key's own limits, a string "<capacity> <refill per ms>" written by
--          token-bucket-rate.lua; when it is missing the key has the configured ones (ARGV).
-- KEYS[3]  optional: the request's id key. A call re-sent by a reconnecting client finds it
--          and gets the first answer back instead of taking tokens twice.
-- ARGV[1]  configured capacity (tokens)
-- ARGV[2]  configured refill (tokens per millisecond)
-- ARGV[3]  tokens requested
-- ARGV[4]  now in milliseconds from the client's clock, or "" to use the server's TIME
-- ARGV[5]  milliseconds to keep the request id (used with KEYS[3])
-- ARGV[6]  adaptive decreaseFactor, or "" when not adaptive (a throttle in the state is then
--          ignored, and dropped at the next grant)
-- ARGV[7]  adaptive minRefillRatio (with ARGV[6])
-- ARGV[8]  adaptive recoveryMs (with ARGV[6])
--
-- The effective refill of a throttled key is cubic_rate (token-bucket-adaptive.lua) at now,
-- applied to the whole time since the bucket was last written, as the memory limiter does.
--
-- Returns remaining ≥ 0       granted; whole tokens left
--         -retryAfterMs < 0  refused; whole milliseconds until the request would fit (≥ 1)
--         "capacity <c>"     refused for good: more tokens than the key's capacity c (its own
--                            one, or the configured one)
--         One integer rather than a table: this script runs on every call, and building a
--         reply table costs Redis more than the rest of the maths.

if redis.replicate_commands then
  -- Redis 3.2 to 4 replicate scripts verbatim unless told otherwise, and then forbid TIME
  -- before a write. Redis 5+ replicates effects by default.
  redis.replicate_commands()
end

if KEYS[3] then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    return tonumber(seen)
  end
end

local requested = tonumber(ARGV[3])
local capacity_text, refill_per_ms = own_limits(KEYS[2])
if not capacity_text then
  capacity_text, refill_per_ms = ARGV[1], tonumber(ARGV[2])
end
local capacity = tonumber(capacity_text)
if requested > capacity then
  return 'capacity ' .. capacity_text
end

local now = now_ms(ARGV[4])

local tokens, at, w, throttled_at
local state = redis.call('GET', KEYS[1])
if state then
  tokens, at, w, throttled_at = parse_bucket(state)
else
  tokens = capacity
  at = now
end

local rate = refill_per_ms
local beta, k, floor
if w then
  if ARGV[6] == '' then
    w = nil
  else
    beta = tonumber(ARGV[6])
    k = tonumber(ARGV[8])
    floor = refill_per_ms * tonumber(ARGV[7])
    rate = cubic_rate(w, now - throttled_at, beta, k, floor, refill_per_ms)
    if rate == refill_per_ms then
      w = nil
    end
  end
end

-- refill(tokens, at, now, capacity, rate)
local elapsed = now - at
if elapsed > 0 then
  tokens = math.min(tokens + elapsed * rate, capacity)
end
if now > at then
  at = now
end

if tokens < requested then
  -- msUntil(tokens, requested, rate)
  return -math.ceil((requested - tokens) / rate)
end

tokens = tokens - requested
local ttl
if w then
  ttl = throttled_ttl(tokens, capacity, w, throttled_at, now, beta, k, floor, refill_per_ms)
else
  -- msUntilFull(tokens, capacity, refillPerMs)
  ttl = math.max(1, math.ceil((capacity - tokens) / refill_per_ms))
end
write_bucket(KEYS[1], tokens, at, w, throttled_at, ttl)
local remaining = math.floor(tokens)
if KEYS[3] then
  redis.call('SET', KEYS[3], remaining, 'PX', ARGV[5])
end
return remaining

-- Shared functions of the token-bucket scripts, prepended to token-bucket.lua,
-- token-bucket-rate.lua and token-bucket-throttle.lua (src/redis/token-bucket.ts), so the
-- adaptive maths has one home in Lua as `cubicRate` has one in
-- src/core/rate-limit/token-bucket-math.ts.
--
-- A bucket's state is a string: "<tokens> <latest time seen, ms>", or, while a throttle slows
-- it, "<tokens> <latest time seen, ms> <rate at the throttle, per ms> <throttled at, ms>".

-- A key's own limits (KEYS[2], "<capacity> <refill per ms>", written by token-bucket-rate.lua):
-- the capacity as written, and the refill per ms; nil when the key has none.
local function own_limits(key)
  local own = redis.call('GET', key)
  if not own then
    return nil
  end
  local space = string.find(own, ' ', 1, true)
  return string.sub(own, 1, space - 1), tonumber(string.sub(own, space + 1))
end

-- The time in ms: the caller's when it gave one (client time source), else the server's.
local function now_ms(given)
  if given ~= '' then
    return tonumber(given)
  end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Parses a bucket's state: tokens, time, and the throttle's rate and time (or nil).
local function parse_bucket(state)
  local s1 = string.find(state, ' ', 1, true)
  local s2 = string.find(state, ' ', s1 + 1, true)
  if not s2 then
    return tonumber(string.sub(state, 1, s1 - 1)), tonumber(string.sub(state, s1 + 1))
  end
  local s3 = string.find(state, ' ', s2 + 1, true)
  return tonumber(string.sub(state, 1, s1 - 1)), tonumber(string.sub(state, s1 + 1, s2 - 1)),
    tonumber(string.sub(state, s2 + 1, s3 - 1)), tonumber(string.sub(state, s3 + 1))
end

-- cubicRate(rateAtThrottle, sinceMs, decreaseFactor, recoveryMs, floor, ceiling), step for step.
local function cubic_rate(w, since, beta, k, floor, ceiling)
  local x = (since - k) / k
  local rate = w * (1 + (1 - beta) * x * x * x)
  if rate >= ceiling then
    return ceiling
  end
  return math.max(rate, floor)
end

-- Milliseconds the state of a throttled bucket must be kept: until the cubic curve is back at
-- `ceiling`, plus the time to fill the bucket at the floor rate (an upper bound on the time to
-- fill at any rate the curve gives). A missing key stands for a full, unthrottled bucket.
local function throttled_ttl(tokens, capacity, w, throttled_at, now, beta, k, floor, ceiling)
  local r = (ceiling / w - 1) / (1 - beta)
  local x
  if r >= 0 then
    x = r ^ (1 / 3)
  else
    x = -((-r) ^ (1 / 3))
  end
  local recovered_at = throttled_at + k * (1 + x)
  return math.max(1, math.ceil(math.max(0, recovered_at - now) + (capacity - tokens) / floor))
end

-- Writes a bucket's state with its expiry; a throttle (`w`) is kept in it while it slows the key.
local function write_bucket(key, tokens, at, w, throttled_at, ttl)
  if w then
    redis.call('SET', key, string.format('%.17g %.17g %.17g %.17g', tokens, at, w, throttled_at),
      'PX', ttl)
  else
    redis.call('SET', key, string.format('%.17g %.17g', tokens, at), 'PX', ttl)
  end
end

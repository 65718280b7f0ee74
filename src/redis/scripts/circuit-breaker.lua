-- Circuit breaker, one atomic step of the state machine for one key: admit a call, record how
-- an admitted call ended, read the state, or reset it. The maths is `admitCall` and
-- `recordOutcome` of src/core/breaker/breaker-machine.ts, step for step, so that every worker
-- sharing the key opens, half-opens and closes together.
--
-- KEYS[1]  the circuit, a hash: s state ("closed" | "open" | "half_open"), e generation,
--          u break end (ms), o breaks since the last close, c failures in a row, k probe
--          successes, p admission times of probes in flight ("t1,t2,"), w window slots
--          ("slot:calls:failures,"). A missing key is a closed circuit with empty counts; the
--          key expires ARGV[17] ms after its last write.
-- ARGV[1]  operation: "admit" | "record" | "status" | "reset"
-- ARGV[2]  now in milliseconds from the client's clock, or "" to use the server's TIME
-- ARGV[3]  failureRatio            ARGV[4]  minimumCalls (-1: off)
-- ARGV[5]  windowMs                ARGV[6]  windowSlots
-- ARGV[7]  consecutiveFailures (-1: off)
-- ARGV[8]  breakDurationMs         ARGV[9]  breakMultiplier      ARGV[10] maxBreakDurationMs
-- ARGV[11] halfOpenMaxCalls        ARGV[12] halfOpenSuccesses    ARGV[13] probeTimeoutMs
-- ARGV[14] record: the ticket's generation
-- ARGV[15] record: "1" for a probe, "0" otherwise
-- ARGV[16] record: outcome, "s" success | "f" failure | "i" ignored
-- ARGV[17] milliseconds to keep the key after a write
--
-- Returns {admitted, state, generation, break end, now, from, retry after, probe}:
--   admitted     1 let through, 0 refused (always 0 for record and status)
--   state        the state after the step
--   generation   the circuit's generation after the step (the ticket of an admitted call)
--   break end    when the break ends, ms (0 unless open)
--   now          the time the step used, ms
--   from         the state before the step when the step changed it, else ""
--   retry after  refused: ms until a call may be let through (while every probe place is
--                taken: until the oldest probe's place is freed, at most breakDurationMs)
--   probe        1 when the admitted call is a half-open probe
-- "reset" deletes the key and returns 1.

if redis.replicate_commands then
  redis.replicate_commands()
end

local key = KEYS[1]
local op = ARGV[1]
if op == 'reset' then
  redis.call('DEL', key)
  return 1
end

local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end

local ratio = tonumber(ARGV[3])
local min_calls = tonumber(ARGV[4])
local window_ms = tonumber(ARGV[5])
local slots = tonumber(ARGV[6])
local consecutive_max = tonumber(ARGV[7])
local break_ms = tonumber(ARGV[8])
local multiplier = tonumber(ARGV[9])
local max_break_ms = tonumber(ARGV[10])
local probe_max = tonumber(ARGV[11])
local successes_max = tonumber(ARGV[12])
local probe_timeout = tonumber(ARGV[13])
local ttl = tonumber(ARGV[17])

local f = redis.call('HMGET', key, 's', 'e', 'u', 'o', 'c', 'k', 'p', 'w')
local state = f[1] or 'closed'
local epoch = tonumber(f[2]) or 0
local open_until = tonumber(f[3]) or 0
local opens = tonumber(f[4]) or 0
local consecutive = tonumber(f[5]) or 0
local successes = tonumber(f[6]) or 0
local probes = {}
if f[7] then
  for t in string.gmatch(f[7], '([^,]+)') do
    probes[#probes + 1] = tonumber(t)
  end
end
local window = {}
if f[8] then
  for id, calls, fails in string.gmatch(f[8], '([^:,]+):([^:,]+):([^:,]+)') do
    window[#window + 1] = { tonumber(id), tonumber(calls), tonumber(fails) }
  end
end
local from = state

local function clear_counts()
  consecutive = 0
  successes = 0
  probes = {}
  window = {}
end

local function open_circuit()
  state = 'open'
  epoch = epoch + 1
  opens = opens + 1
  local grown = break_ms * multiplier ^ math.max(0, opens - 1)
  open_until = now + math.floor(math.min(max_break_ms, grown))
  clear_counts()
end

local function save()
  local p = ''
  for _, t in ipairs(probes) do
    p = p .. string.format('%d', t) .. ','
  end
  local w = ''
  for _, s in ipairs(window) do
    w = w .. string.format('%d:%d:%d', s[1], s[2], s[3]) .. ','
  end
  redis.call('HMSET', key, 's', state, 'e', epoch, 'u', string.format('%d', open_until),
    'o', opens, 'c', consecutive, 'k', successes, 'p', p, 'w', w)
  redis.call('PEXPIRE', key, ttl)
end

local function reply(admitted, retry_after, probe)
  local changed = ''
  if from ~= state then
    changed = from
  end
  local until_ms = 0
  if state == 'open' then
    until_ms = open_until
  end
  return { admitted, state, epoch, until_ms, now, changed, retry_after, probe }
end

if op == 'status' then
  return reply(0, 0, 0)
end

if op == 'admit' then
  if state == 'open' then
    if now < open_until then
      return reply(0, open_until - now, 0)
    end
    state = 'half_open'
    epoch = epoch + 1
    clear_counts()
  end
  if state == 'half_open' then
    local live = {}
    for _, t in ipairs(probes) do
      if t + probe_timeout > now then
        live[#live + 1] = t
      end
    end
    probes = live
    if #probes >= probe_max then
      local oldest = probes[1]
      for _, t in ipairs(probes) do
        if t < oldest then
          oldest = t
        end
      end
      save()
      return reply(0, math.min(break_ms, math.max(0, oldest + probe_timeout - now)), 0)
    end
    probes[#probes + 1] = now
    save()
    return reply(1, 0, 1)
  end
  return reply(1, 0, 0)
end

-- record
local ticket_epoch = tonumber(ARGV[14])
local probe = ARGV[15] == '1'
local outcome = ARGV[16]
if ticket_epoch ~= epoch then
  return reply(0, 0, 0)
end
if state == 'half_open' then
  if not probe then
    return reply(0, 0, 0)
  end
  table.remove(probes, 1)
  if outcome == 'f' then
    open_circuit()
  elseif outcome == 's' then
    successes = successes + 1
    if successes >= successes_max then
      state = 'closed'
      epoch = epoch + 1
      opens = 0
      clear_counts()
    end
  end
  save()
  return reply(0, 0, 0)
end
if state ~= 'closed' or outcome == 'i' then
  return reply(0, 0, 0)
end

local current = math.floor(now / (window_ms / slots))
local kept = {}
local slot
for _, s in ipairs(window) do
  if s[1] > current - slots and s[1] <= current then
    kept[#kept + 1] = s
    if s[1] == current then
      slot = s
    end
  end
end
window = kept
if not slot then
  slot = { current, 0, 0 }
  window[#window + 1] = slot
end
slot[2] = slot[2] + 1
if outcome == 'f' then
  slot[3] = slot[3] + 1
  consecutive = consecutive + 1
  local calls, fails = 0, 0
  for _, s in ipairs(window) do
    calls = calls + s[2]
    fails = fails + s[3]
  end
  if (consecutive_max > 0 and consecutive >= consecutive_max)
    or (min_calls > 0 and calls >= min_calls and fails / calls >= ratio) then
    open_circuit()
  end
else
  consecutive = 0
end
save()
return reply(0, 0, 0)

-- tollgate: one commit, all or nothing.
--
-- KEYS[1..n]      the commit's keys, in order
-- KEYS[n+1..]     version counters, one per hash tag (`<prefix>ver:{<tag>}`),
--                 each holding '<last version> <expiry in unix ms>'
-- ARGV[1]         n
-- ARGV per op i, from b = 2 + (i - 1) * 6:
--   b     'P' put or 'D' delete
--   b+1   expectation: 'A' absent, 'V' version, '*' any
--   b+2   the expected version, 16 hex digits ('' unless 'V')
--   b+3   expires_at, unix ms ('0' for a delete)
--   b+4   which counter (1-based, into KEYS[n+1..])
--   b+5   the value ('' for a delete)
--
-- A stored value is its version as 16 hex digits, then the payload. Versions
-- come from the tag's counter: max(last + 1, server time in us), and the
-- counter outlives every value it versioned, so a deleted and recreated key
-- never gets a version seen before. Answers 1 (committed) or 0 (conflict).
if redis.replicate_commands then redis.replicate_commands() end

local n = tonumber(ARGV[1])

-- Every expectation first: a conflict changes nothing. Only the header is
-- read (GETRANGE): a missing key reads as '', a stored value is never shorter
-- than its 16-digit header.
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local expect = ARGV[b + 1]
  if expect ~= '*' then
    local cur = redis.call('GETRANGE', KEYS[i], 0, 15)
    if expect == 'A' then
      if cur ~= '' then return 0 end
    elseif cur ~= ARGV[b + 2] then
      return 0
    end
  end
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])

local counters = {}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local expires_at = tonumber(ARGV[b + 3])
  if ARGV[b] == 'P' and expires_at > now_ms then
    local c = tonumber(ARGV[b + 4])
    local st = counters[c]
    if not st then
      -- '<last version> <its expiry, unix ms>': one read, no PTTL.
      local saved = redis.call('GET', KEYS[n + c])
      st = { 0, 0 }
      if saved then
        local sp = string.find(saved, ' ', 1, true)
        if sp then
          st = { tonumber(string.sub(saved, 1, sp - 1)) or 0, tonumber(string.sub(saved, sp + 1)) or 0 }
        end
      end
      counters[c] = st
    end
    local v = math.max(st[1] + 1, now_us)
    st[1] = v
    if expires_at > st[2] then st[2] = expires_at end
    redis.call('SET', KEYS[i], string.format('%016x', v) .. ARGV[b + 5], 'PXAT', expires_at)
  else
    -- A delete, or a put already expired.
    redis.call('DEL', KEYS[i])
  end
end

for c, st in pairs(counters) do
  redis.call('SET', KEYS[n + c], string.format('%d %d', st[1], st[2]), 'PXAT', st[2])
end
return 1

-- tollgate: one commit, all or nothing (docs/store-format.md).
--
-- KEYS[i]        the key of op i
-- ARGV[3i - 2]   its expectation: '*' any, '' absent, '+' and 4 bytes (an append,
--                and the most entries the list may hold before it), '-' (a removal
--                from a list), else the 9-byte header (0xF1, version) the stored
--                value must start with
-- ARGV[3i - 1]   the whole value to store (0xF1, this commit's version, payload),
--                or '' to delete the key; for an append, the header, the entry's
--                expiry (8 bytes) and the entry; for a removal, the header and the
--                sid whose entries go
-- ARGV[3i]       the value's expiry, unix ms (SET .. PXAT; a past one leaves no key)
--
-- Answers 1 (committed) or 0 (an expectation failed; nothing was written).
-- Every write of one commit carries the commit's version, chosen by the client:
-- a commit the client library sent again after a lost reply finds its own
-- version in place and answers 1 again.
local n = #KEYS

-- An expectation failed: committed already if a write of this commit is in place.
local function failed()
  local own
  for i = 1, n do
    local v = ARGV[3 * i - 1]
    if v ~= '' then
      own = own or string.sub(v, 1, 9)
      if redis.call('GETRANGE', KEYS[i], 0, 8) == own then return 1 end
    end
  end
  return 0
end

-- Big-endian numbers at byte `at` of s: 4 bytes, 8 bytes (expiries, below 2^53).
-- One string.byte call for four bytes: the script's own work is part of every commit.
local function u32(s, at)
  local a, b, c, d = string.byte(s, at, at + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function u64(s, at)
  return u32(s, at) * 4294967296 + u32(s, at + 4)
end

-- Four big-endian bytes of c.
local function be32(c)
  return string.char(math.floor(c / 16777216) % 256, math.floor(c / 65536) % 256, math.floor(c / 256) % 256, c % 256)
end

-- Checks first; a put expecting absence is checked by its own SET NX below. An
-- append reads its list here: a counted list (0xB1, count, expiry) with room, or
-- nothing; so does a removal: a counted list, or nothing.
local creates, lists = 0, {}
for i = 1, n do
  local e = ARGV[3 * i - 2]
  local kind = string.byte(e, 1)
  if kind == 43 then
    local cur = redis.call('GET', KEYS[i])
    if cur then
      if #cur < 22 or string.byte(cur, 10) ~= 177 or u32(cur, 11) >= u32(e, 2) then return failed() end
    elseif u32(e, 2) < 1 then
      return failed()
    end
    lists[i] = cur
  elseif kind == 45 then
    local cur = redis.call('GET', KEYS[i])
    if cur and (#cur < 22 or string.byte(cur, 10) ~= 177) then return failed() end
    lists[i] = cur
  elseif e == '' and ARGV[3 * i - 1] ~= '' then
    creates = creates + 1
  elseif e ~= '*' and redis.call('GETRANGE', KEYS[i], 0, 8) ~= e then
    return failed()
  end
end

-- Puts expecting absence, before any other write: one refused undoes the ones made.
if creates > 0 then
  for i = 1, n do
    if ARGV[3 * i - 2] == '' and ARGV[3 * i - 1] ~= '' then
      if not redis.call('SET', KEYS[i], ARGV[3 * i - 1], 'NX', 'PXAT', ARGV[3 * i]) then
        for j = 1, i - 1 do
          if ARGV[3 * j - 2] == '' and ARGV[3 * j - 1] ~= '' then redis.call('DEL', KEYS[j]) end
        end
        return failed()
      end
    end
  end
end

for i = 1, n do
  local e, v = ARGV[3 * i - 2], ARGV[3 * i - 1]
  if v == '' then
    redis.call('DEL', KEYS[i])
  elseif string.byte(e, 1) == 43 then
    -- The list with one entry more, this commit's header, and the later expiry.
    local cur = lists[i]
    if not cur then
      redis.call('SET', KEYS[i], string.sub(v, 1, 9) .. '\177\0\0\0\1' .. string.sub(v, 10), 'PXAT', ARGV[3 * i])
    else
      local head = string.sub(v, 1, 9) .. '\177' .. be32(u32(cur, 11) + 1)
      local body = string.sub(cur, 23) .. string.sub(v, 18)
      if u64(v, 10) > u64(cur, 15) then
        redis.call('SET', KEYS[i], head .. string.sub(v, 10, 17) .. body, 'PXAT', ARGV[3 * i])
      else
        redis.call('SET', KEYS[i], head .. string.sub(cur, 15, 22) .. body, 'KEEPTTL')
      end
    end
  elseif string.byte(e, 1) == 45 then
    -- The list without the sid's entries (each: its sid's length, the sid, 24 bytes),
    -- this commit's header, the same expiry; nothing left deletes it.
    local cur = lists[i]
    if cur then
      local sid, kept, pos = string.sub(v, 10), {}, 23
      while pos <= #cur do
        local len = string.byte(cur, pos)
        local stop = pos + len + 24
        if len ~= #sid or string.sub(cur, pos + 1, pos + len) ~= sid then kept[#kept + 1] = string.sub(cur, pos, stop) end
        pos = stop + 1
      end
      if #kept == 0 then
        redis.call('DEL', KEYS[i])
      else
        redis.call('SET', KEYS[i], string.sub(v, 1, 9) .. '\177' .. be32(#kept) .. string.sub(cur, 15, 22) .. table.concat(kept), 'KEEPTTL')
      end
    end
  elseif e ~= '' then
    redis.call('SET', KEYS[i], v, 'PXAT', ARGV[3 * i])
  end
end
return 1

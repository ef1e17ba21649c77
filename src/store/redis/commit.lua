-- tollgate: one commit, all or nothing (docs/store-format.md).
--
-- KEYS[i]        the key of op i
-- ARGV[3i - 2]   its expectation: '*' any, '' absent, else the 9-byte header
--                (0xF1, version) the stored value must start with
-- ARGV[3i - 1]   the whole value to store (0xF1, this commit's version, payload),
--                or '' to delete the key
-- ARGV[3i]       the value's expiry, unix ms (SET .. PXAT; a past one leaves no key)
--
-- Answers 1 (committed) or 0 (an expectation failed; nothing was written).
-- Every put of one commit carries the commit's version, chosen by the client:
-- a commit the client library sent again after a lost reply finds its own
-- version in place and answers 1 again.
local n = #KEYS

-- An expectation failed: committed already if a put of this commit is in place.
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

-- Checks first; a put expecting absence is checked by its own SET NX below.
local creates = 0
for i = 1, n do
  local e = ARGV[3 * i - 2]
  if e == '' and ARGV[3 * i - 1] ~= '' then
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
  elseif e ~= '' then
    redis.call('SET', KEYS[i], v, 'PXAT', ARGV[3 * i])
  end
end
return 1

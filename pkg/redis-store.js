// A tollgate store over Redis with an ioredis client (`tollgate/redis-store`),
// and an example of the JS store contract for other backends.
//
// Each key is a hash { v: value, ver: version } with a PEXPIREAT. Versions come
// from one counter per user (the `{u:<user>}` hash tag every key of a commit
// shares), so they never repeat for a key even after it is deleted, and a
// Redis Cluster keeps a commit's keys and its counter in one slot.
// A commit is one Lua script: every expectation is checked before any write.

const GET = `
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'v', 'ver')
  if v[1] then out[i] = v else out[i] = false end
end
return out`;

// KEYS[1] = version counter, KEYS[2..] = op keys.
// ARGV per op, 5 each: type, expect, version, value, expiresAt.
const COMMIT = `
local n = #KEYS - 1
for i = 1, n do
  local expect = ARGV[(i - 1) * 5 + 2]
  if expect ~= 'any' then
    local cur = redis.call('HGET', KEYS[i + 1], 'ver')
    if expect == 'absent' then
      if cur then return 0 end
    elseif cur ~= ARGV[(i - 1) * 5 + 3] then
      return 0
    end
  end
end
for i = 1, n do
  local base = (i - 1) * 5
  if ARGV[base + 1] == 'put' then
    local ver = redis.call('INCR', KEYS[1])
    redis.call('HSET', KEYS[i + 1], 'v', ARGV[base + 4], 'ver', ver)
    redis.call('PEXPIREAT', KEYS[i + 1], ARGV[base + 5])
  else
    redis.call('DEL', KEYS[i + 1])
  end
end
return 1`;

/** The `{...}` hash tag of a tollgate key (every key of one commit shares it). */
function hashTag(key) {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open ? key.slice(open, close + 1) : key;
}

/**
 * @param {import('./redis-store.js').RedisLike} redis an ioredis client (or Cluster)
 * @param {string} [prefix] put in front of every key
 * @returns {import('./index.js').TollgateStore}
 */
export function redisStore(redis, prefix = 'tg:') {
  redis.defineCommand('tollgateGet', { lua: GET });
  redis.defineCommand('tollgateCommit', { lua: COMMIT });
  return {
    async get(keys) {
      const rows = await redis.tollgateGet(keys.length, ...keys.map((k) => prefix + k));
      return rows.map((row) => (row ? { value: row[0], version: row[1] } : null));
    },
    async commit(ops) {
      if (ops.length === 0) return true;
      const keys = [`${prefix}ver:${hashTag(ops[0].key)}`];
      const args = [];
      for (const op of ops) {
        keys.push(prefix + op.key);
        args.push(op.type, op.expect, String(op.version ?? ''), op.value ?? '', String(op.expiresAt ?? 0));
      }
      return (await redis.tollgateCommit(keys.length, ...keys, ...args)) === 1;
    },
    caps: { atomic: true, consistent: true, minTtlMs: 1 },
  };
}

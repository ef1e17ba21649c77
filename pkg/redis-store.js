// tollgate/redis-store: sessions in Redis through an ioredis client (`Redis` or `Cluster`).
//
// A transport only. The keys, the value layout and the commit script belong to
// tollgate's Rust code, which runs in this package's WebAssembly, so this store
// reads and writes exactly what the Rust `RedisStore` does: a Node service and
// a Rust service on one Redis share sessions (docs/store-format.md).

const COMMAND = 'tollgateCommit';

/** A Buffer over the same bytes (ioredis sends Buffers as bytes, other values as text). */
const asBuffer = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * @param {import('./redis-store.js').RedisLike} client an ioredis `Redis` or `Cluster`
 * @param {import('./redis-store.js').RedisStoreOptions} [options] `prefix` goes in front of every key (default "tg:")
 * @returns {import('./index.js').RedisTransport} for `createManager({ store })`
 */
export function redisStore(client, options = {}) {
  const usage = 'redisStore(client, { prefix }): ';
  if (!client || typeof client.defineCommand !== 'function' || typeof client.mgetBuffer !== 'function') {
    throw new TypeError(`${usage}client is an ioredis Redis or Cluster`);
  }
  if (options === null || typeof options !== 'object') throw new TypeError(`${usage}options is an object`);
  const { prefix = 'tg:' } = options;
  if (typeof prefix !== 'string') throw new TypeError(`${usage}prefix is a string`);
  // ioredis would put its own prefix in front of ours, and Rust services would not find the keys.
  if (client.options?.keyPrefix) throw new TypeError(`${usage}give the prefix here, not as ioredis's keyPrefix`);
  return Object.freeze({
    kind: 'tollgate-redis',
    prefix,
    /** Called by createManager with the commit script, from the WebAssembly module. */
    defineCommit(lua) {
      client.defineCommand(COMMAND, { lua });
    },
    mget: (keys) => client.mgetBuffer(keys),
    commit: (keys, args) => client[COMMAND](keys.length, ...keys, ...args.map(asBuffer)),
  });
}

import type { RedisTransport } from './index.js';

/** The part of an ioredis client (`Redis` or `Cluster`) the store uses. */
export interface RedisLike {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
  mgetBuffer(keys: string[]): Promise<(Uint8Array | null)[]>;
}

export interface RedisStoreOptions {
  /** Put in front of every key (default "tg:"); the same as `RedisConfig::key_prefix` of Rust services sharing the sessions. No `{` or `}`. */
  prefix?: string;
}

/**
 * Sessions in Redis, in the format the Rust `RedisStore` reads and writes:
 * `createManager({ secret, store: redisStore(new Redis(url)) })`.
 */
export declare function redisStore(client: RedisLike, options?: RedisStoreOptions): RedisTransport;

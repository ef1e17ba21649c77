import type { TollgateStore } from './index.js';

/** The subset of an ioredis client (or Cluster) the store uses. */
export interface RedisLike {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** A tollgate store over Redis: `prefix` (default "tg:") goes in front of every key. */
export declare function redisStore(redis: RedisLike, prefix?: string): TollgateStore;

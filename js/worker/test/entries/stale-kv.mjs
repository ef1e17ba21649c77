// Test-only Worker entry: the built Worker, its KV binding seen from a location
// whose reads may be stale. Workers KV caches reads at the edge: another location
// may read a value (and KV's answer "absent") as it was up to about 60 s ago,
// while its own writes are visible to it at once. A request carrying
// `x-test-kv-as-of: <unix ms>` is served from such a location: every read, the
// reads a commit checks its expectations against included, answers the value as
// of that time (or as this location last wrote it); its writes land in the real
// KV namespace. Requests without the header read the real namespace.
// `GET /__test/now` answers this isolate's clock, for tests to pick a moment.

import { WorkerEntrypoint } from 'cloudflare:workers';
import Inner, { UserSessions } from './index.js';

export { UserSessions };

/** Every write made through this isolate, oldest first: { key, at, value (Uint8Array or null), metadata, stale }. */
const history = [];
/** The stale location's moment for the request in flight (the tests send one request at a time), or null. */
let asOf = null;

const copy = (value) => {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
};

const as = (bytes, type) => {
  if (bytes === null) return null;
  if (type === 'arrayBuffer') return bytes.slice().buffer;
  if (type === 'stream') return new Blob([bytes]).stream();
  const text = new TextDecoder().decode(bytes);
  return type === 'json' ? JSON.parse(text) : text;
};

const typeOf = (opts) => (typeof opts === 'string' ? opts : opts?.type ?? 'text');

class LocationKv {
  constructor(kv) {
    this.kv = kv;
  }

  /** The entry the stale location sees: the last write before its moment, or its own last write. */
  view(key) {
    for (let i = history.length - 1; i >= 0; i--) {
      const w = history[i];
      if (w.key === key && (w.at <= asOf || w.stale)) return w;
    }
    return { value: null, metadata: null };
  }

  async getWithMetadata(key, opts) {
    if (asOf === null) return this.kv.getWithMetadata(key, opts);
    const w = this.view(key);
    return { value: as(w.value, typeOf(opts)), metadata: w.value === null ? null : w.metadata, cacheStatus: null };
  }

  async get(key, opts) {
    return (await this.getWithMetadata(key, opts)).value;
  }

  async put(key, value, opts) {
    history.push({ key, at: Date.now(), value: copy(value), metadata: opts?.metadata ?? null, stale: asOf !== null });
    return this.kv.put(key, value, opts);
  }

  async delete(key) {
    history.push({ key, at: Date.now(), value: null, metadata: null, stale: asOf !== null });
    return this.kv.delete(key);
  }

  list(opts) {
    return this.kv.list(opts);
  }
}

let env = null;

export default class StaleKvWorker extends WorkerEntrypoint {
  async fetch(request) {
    if (new URL(request.url).pathname === '/__test/now') return Response.json({ now: Date.now() });
    // One environment for the isolate: the Worker keeps the first one it is given.
    env ??= { ...this.env, TOLLGATE_KV: new LocationKv(this.env.TOLLGATE_KV) };
    const header = request.headers.get('x-test-kv-as-of');
    asOf = header === null ? null : Number(header);
    try {
      return await Inner.prototype.fetch.call({ env, ctx: this.ctx }, request);
    } finally {
      asOf = null;
    }
  }
}

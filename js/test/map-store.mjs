// A store written in JavaScript over a Map, as the JS store contract documents it (pkg/README.md):
// async get(keys) and commit(ops), values as Uint8Array. Atomic: commit checks every expectation
// and applies every write with no await in between. Values are copied in and out.

/** The data several store objects (several clients) share. */
export function mapData() {
  return { entries: new Map(), nextVersion: 1 };
}

const copy = (value) => {
  if (!(value instanceof Uint8Array)) throw new TypeError(`the contract carries values as Uint8Array, not ${typeof value}`);
  return value.slice();
};

/** A store object over `data`. */
export function mapStore(data = mapData()) {
  const live = (key, now) => {
    const entry = data.entries.get(key);
    return entry && entry.expiresAt > now ? entry : null;
  };
  return {
    async get(keys) {
      const now = Date.now();
      return keys.map((key) => {
        const entry = live(key, now);
        return entry ? { value: copy(entry.value), version: entry.version } : null;
      });
    },
    async commit(ops) {
      const now = Date.now();
      for (const op of ops) {
        const current = live(op.key, now)?.version ?? null;
        if (op.expect === 'absent' && current !== null) return false;
        if (op.expect === 'version' && (current === null || String(current) !== String(op.version))) return false;
      }
      for (const op of ops) {
        if (op.type === 'put' && op.expiresAt > now) {
          data.entries.set(op.key, { value: copy(op.value), version: data.nextVersion++, expiresAt: op.expiresAt });
        } else {
          data.entries.delete(op.key);
        }
      }
      return true;
    },
  };
}

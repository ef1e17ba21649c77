// tollgate/redis-store over a real Redis (scripts/test-js.sh starts one and sets
// TG_TEST_REDIS_PORT): a Redis that is down, the stored format, what the format
// refuses, and the options. What the store must do (the flow, two clients,
// races) is the conformance suite's: conformance.mjs runs it on this store.
// Sharing sessions with Rust services, on one server and on a Cluster:
// cross-runtime.mjs (scripts/cross-runtime.sh).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { createManager } from 'tollgate';
import { redisStore } from 'tollgate/redis-store';
import { SECRET, rejectsWith, user } from './helpers.mjs';

const port = Number(process.env.TG_TEST_REDIS_PORT);
if (!port) throw new Error('set TG_TEST_REDIS_PORT to a Redis on 127.0.0.1 (scripts/test-js.sh does)');

const clients = [];
const connect = () => {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
};
let shared;
before(() => {
  shared = connect();
});
after(async () => {
  await Promise.all(clients.map((c) => c.quit()));
});

describe('redis store', () => {
  test('a Redis that is down is store_unavailable, and the same manager works once it is back', async () => {
    const down = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const [toDown, toUp] = [redisStore(down), redisStore(shared)];
    let current = toDown;
    const store = {
      ...toUp,
      defineCommit: (lua) => [toDown, toUp].forEach((t) => t.defineCommit(lua)),
      mget: (keys) => current.mget(keys),
      commit: (keys, args) => current.commit(keys, args),
    };
    const m = await createManager({ secret: SECRET, kid: 'h1', store });
    const u = user('lee');
    await rejectsWith(m.issue(u), 'store_unavailable');
    down.disconnect();
    current = toUp;
    const t = await m.issue(u);
    await m.verify(t.accessToken, 'strict');
  });

  test('values are 0xF1, the version, the payload, under the prefix; no version counter', async () => {
    const m = await createManager({ secret: SECRET, kid: 'h1', store: redisStore(shared, { prefix: 'jsfmt:' }) });
    const u = user('fmt');
    const t = await m.issue(u);
    const record = await shared.getBuffer(`jsfmt:s:{u:${u}}:${t.session.sid}`);
    const index = await shared.getBuffer(`jsfmt:i:{u:${u}}`);
    assert.equal(record[0], 0xf1);
    assert.equal(index[0], 0xf1);
    assert.deepEqual(record.subarray(1, 9), index.subarray(1, 9), 'one commit, one version');
    assert.notEqual(record.readBigUInt64BE(1), 0n);
    assert.equal(await shared.exists(`jsfmt:ver:{u:${u}}`), 0);
    assert.equal(await shared.exists(`tg:s:{u:${u}}:${t.session.sid}`), 0, 'nothing outside the prefix');
    const expiresAt = await shared.pexpiretime(`jsfmt:s:{u:${u}}:${t.session.sid}`);
    assert.ok(expiresAt > Date.now(), 'the record expires with Redis');
  });

  test('a value tollgate did not write answers store_corrupt', async () => {
    const m = await createManager({ secret: SECRET, kid: 'h1', store: redisStore(shared) });
    const u = user('bad');
    const t = await m.issue(u);
    const key = `tg:s:{u:${u}}:${t.session.sid}`;
    const stored = await shared.getBuffer(key);
    // The previous Rust format: 16 hex digits of version, then the payload.
    await shared.set(key, Buffer.concat([Buffer.from('00000000000000ff'), stored.subarray(9)]), 'PX', 60_000);
    await rejectsWith(m.verify(t.accessToken, 'strict'), 'store_corrupt');
    await rejectsWith(m.refresh(t.refreshToken), 'store_corrupt');
    await shared.set(key, 'garbage', 'PX', 60_000);
    await rejectsWith(m.verify(t.accessToken, 'strict'), 'store_corrupt');
    // The previous npm format: a hash. A read sees no string there; a commit touching it is refused.
    const v = user('hash');
    await shared.hset(`tg:i:{u:${v}}`, 'v', '[]', 'ver', 1);
    await rejectsWith(m.issue(v), 'store_corrupt');
    // Still working.
    const ok = await m.issue(user('bad'));
    await m.verify(ok.accessToken, 'strict');
  });

  test('redisStore refuses what would write elsewhere than Rust services read', () => {
    assert.throws(() => redisStore(shared, 'app:'), TypeError);
    assert.throws(() => redisStore(shared, { prefix: 5 }), TypeError);
    assert.throws(() => redisStore({}), TypeError);
    const prefixed = new Redis({ host: '127.0.0.1', port, lazyConnect: true, keyPrefix: 'x:' });
    assert.throws(() => redisStore(prefixed), /keyPrefix/);
    prefixed.disconnect();
  });
});

// The whole flow on a JS store over a real Redis (scripts/test-js.sh starts one
// and sets TG_TEST_REDIS_PORT), plus what only a shared store shows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Redis from 'ioredis';
import { createManager } from 'tollgate';
import { redisStore } from 'tollgate/redis-store';
import { flow } from './flow.mjs';
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
  flow(test, () => redisStore(shared));

  test('two managers (two processes, say) share sessions through Redis', async () => {
    const config = () => ({ secret: SECRET, kid: 'h1', store: redisStore(connect()) });
    const a = await createManager(config());
    const b = await createManager(config());
    const u = user('jon');
    const t = await a.issue(u);
    await b.verify(t.accessToken, 'strict');
    const next = await b.refresh(t.refreshToken);
    await a.revoke(u, next.session.sid);
    await rejectsWith(b.verify(next.accessToken, 'strict'), 'session_revoked');
  });

  test('100 concurrent refreshes across two managers leave one chain', async () => {
    const config = () => ({ secret: SECRET, kid: 'h1', store: redisStore(connect()) });
    const [a, b] = await Promise.all([createManager(config()), createManager(config())]);
    const u = user('kim');
    const t = await a.issue(u);
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).refresh(t.refreshToken)));
    assert.equal(new Set(answers.map((x) => x.refreshToken)).size, 1);
    assert.equal((await a.list(u)).length, 1);
  });

  test('a Redis that is down is store_unavailable, and the same manager works once it is back', async () => {
    const down = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    let current = redisStore(down);
    const m = await createManager({
      secret: SECRET,
      kid: 'h1',
      store: { get: (keys) => current.get(keys), commit: (ops) => current.commit(ops) },
    });
    const u = user('lee');
    await rejectsWith(m.issue(u), 'store_unavailable');
    down.disconnect();
    current = redisStore(shared);
    const t = await m.issue(u);
    await m.verify(t.accessToken, 'strict');
  });
});

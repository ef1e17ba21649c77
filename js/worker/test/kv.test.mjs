// The Worker on Workers KV, in workerd, over HTTP: the flow one request at a
// time, stateless verification, a revocation visible to strict verification at
// the same location (here, the one local workerd) with KV's 60 s minimum
// expiry, bad requests. What the store itself must do is the conformance
// suite's (conformance.mjs), which KV passes except what its caps() rule out:
// concurrent writers (no compare-and-swap) and other locations (changes
// propagate within about 60 s).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, badRequests, code, everyUserRouteWithHostileIds, kvSnapshot, startWorker } from './harness.mjs';

describe('Workers KV store', () => {
  let w;
  before(async () => {
    w = await startWorker({
      store: 'kv',
      // 30 s access tokens and no leeway: a revoked session's tombstone lives
      // 30 s, which KV refuses as an expirationTtl; the store must round it up to 60 s.
      vars: { TOLLGATE_ACCESS_TTL: '30s', TOLLGATE_LEEWAY: 0 },
    });
  });
  after(async () => w?.stop());

  const create = async (user) => {
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user, metadata: { ua: 'kv' } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const verify = (token, mode) => w.call('POST', '/v1/verify', { json: mode ? { token, mode } : { token } });
  const refresh = (refresh_token) => w.call('POST', '/v1/refresh', { json: { refresh_token } });

  test('the whole flow, one request at a time', async () => {
    assert.deepEqual((await w.call('GET', '/healthz')).body, { status: 'ok' });
    const t = await create('alice');
    let r = await verify(t.access_token, 'strict');
    assert.equal(r.status, 200);
    assert.equal(r.body.session.metadata.ua, 'kv');

    r = await refresh(t.refresh_token);
    assert.equal(r.status, 200);
    const t2 = r.body;
    r = await w.call('GET', '/v1/users/alice/sessions', { bearer: t2.access_token });
    assert.deepEqual([r.status, r.body.sessions.length], [200, 1]);

    const other = await create('alice');
    r = await w.call('DELETE', '/v1/users/alice/sessions?keep=current', { bearer: t2.access_token });
    assert.deepEqual([r.status, r.body.revoked], [200, 1]);
    assert.equal(code(await verify(other.access_token, 'strict')), 'session_revoked');

    r = await w.call('DELETE', `/v1/sessions/${t2.session.sid}?user=alice`, { key: API_KEY });
    assert.equal(r.status, 200);
    r = await w.call('GET', '/v1/users/alice/sessions', { key: API_KEY });
    assert.deepEqual([r.status, r.body.sessions.length], [200, 0]);
  });

  test('user ids with + % / { } :, spaces and non-ASCII work on every user route, one request at a time', async () => {
    await everyUserRouteWithHostileIds(w);
    // Their keys are escaped inside the hash tag: no key has a brace inside its {u:...}.
    const kv = await w.mf.getKVNamespace('TOLLGATE_KV');
    const names = (await kv.list({ prefix: 'tollgate/s:{u:' })).keys.map((k) => k.name);
    assert.ok(names.some((n) => n.startsWith('tollgate/s:{u:%7Bu:mallory%7D}:')), names.join('\n'));
    for (const name of names) assert.match(name, /^tollgate\/s:\{u:[^{}]+\}:[A-Za-z0-9_-]{22}$/, name);
  });

  test('stateless verification needs no store; without a mode, verify is strict', async () => {
    const t = await create('bob');
    const r = await verify(t.access_token, 'stateless');
    assert.equal(r.status, 200);
    assert.equal(r.body.claims.sub, 'bob');
    assert.equal(r.body.session, null);
    assert.equal(code(await verify(t.access_token.slice(0, -2) + 'xx', 'stateless')), 'token_invalid');
    const strict = await verify(t.access_token);
    assert.equal(strict.status, 200);
    assert.equal(strict.body.session.user, 'bob', 'the default mode reads the session');
  });

  test('a revocation is visible to strict verify at the same location', async () => {
    const t = await create('carol');
    assert.equal((await verify(t.access_token, 'strict')).status, 200);
    const r = await w.call('DELETE', `/v1/sessions/${t.session.sid}?user=carol`, { key: API_KEY });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(code(await verify(t.access_token, 'strict')), 'session_revoked');
    assert.equal(code(await refresh(t.refresh_token)), 'session_revoked');
    // The tombstone's 30 s lifetime was rounded up to KV's 60 s minimum.
    const kv = await w.mf.getKVNamespace('TOLLGATE_KV');
    const list = await kv.list({ prefix: 'tollgate/s:{u:carol}:' });
    assert.equal(list.keys.length, 1);
    const { metadata } = await kv.getWithMetadata(list.keys[0].name);
    const ttlS = list.keys[0].expiration - Date.now() / 1000;
    assert.ok(ttlS > 55 && ttlS <= 61, `KV expiration in ${ttlS} s`);
    assert.ok(metadata.e - Date.now() <= 31_000, `the value itself expires with the tombstone: ${metadata.e - Date.now()} ms`);
  });

  test('bad requests and wrong API keys get coded 4xx and change nothing stored', async () => {
    const t = await create('dave');
    const before = await kvSnapshot(w.mf);
    assert.ok(before.length > 0);
    for (const [method, path, opts, status, want] of badRequests(t)) {
      const r = await w.call(method, path, opts).catch((e) => assert.fail(`${method} ${path}: ${e.cause ?? e}`));
      assert.deepEqual([r.status, code(r)], [status, want], `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error.message.length > 0);
    }
    assert.deepEqual(await kvSnapshot(w.mf), before, 'KV holds exactly what it held');
  });
});

// The Worker on Durable Objects (one object per user), in workerd, over HTTP:
// the whole flow, concurrent requests into one object (refreshes, creates under
// the limit), bad requests, the sweeping alarm. What the store itself must do
// (rotation, reuse, revocation, expiry, limits) is the conformance suite's,
// run inside an object by conformance.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, OTHER_API_KEY, badRequests, code, doSnapshot, everyUserRouteWithHostileIds, sleep, startWorker } from './harness.mjs';

describe('Durable Object store', () => {
  let w;
  before(async () => {
    w = await startWorker({
      store: 'durable',
      vars: { TOLLGATE_MAX_SESSIONS_PER_USER: '3', TOLLGATE_ON_LIMIT: 'evict_oldest' },
    });
  });
  after(async () => w?.stop());

  const create = async (user, metadata = { ua: 'test' }) => {
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user, metadata } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const verify = (token, mode) => w.call('POST', '/v1/verify', { json: mode ? { token, mode } : { token } });
  const refresh = (refresh_token) => w.call('POST', '/v1/refresh', { json: { refresh_token } });

  test('health and JWKS are answered by the Worker', async () => {
    assert.deepEqual((await w.call('GET', '/healthz')).body, { status: 'ok' });
    const jwks = await w.call('GET', '/.well-known/jwks.json');
    assert.equal(jwks.status, 200);
    assert.deepEqual(jwks.body, { keys: [] }, 'HMAC keys are never published');
  });

  test('the whole flow over HTTP', async () => {
    const t = await create('alice');
    assert.equal(t.session.user, 'alice');
    let r = await verify(t.access_token, 'strict');
    assert.equal(r.status, 200);
    assert.equal(r.body.claims.sub, 'alice');
    assert.equal(r.body.claims.iss, 'https://auth.test');
    assert.equal(r.body.session.metadata.ua, 'test');
    r = await verify(t.access_token, 'stateless');
    assert.equal(r.status, 200, 'stateless');
    assert.equal(r.body.session, null);
    r = await verify(t.access_token);
    assert.equal(r.status, 200);
    assert.equal(r.body.session.user, 'alice', 'without a mode, verify is strict: the request went to the object');

    r = await refresh(t.refresh_token);
    assert.equal(r.status, 200);
    const t2 = r.body;
    assert.notEqual(t2.refresh_token, t.refresh_token);

    // The user lists their own sessions with their access token, not someone else's.
    r = await w.call('GET', '/v1/users/alice/sessions', { bearer: t2.access_token });
    assert.equal(r.status, 200);
    assert.equal(r.body.sessions.length, 1);
    r = await w.call('GET', '/v1/users/bob/sessions', { bearer: t2.access_token });
    assert.equal(code(r), 'forbidden');

    // A second session; the user revokes all but the current one.
    const other = await create('alice');
    r = await w.call('DELETE', '/v1/users/alice/sessions?keep=current', { bearer: t2.access_token });
    assert.deepEqual([r.status, r.body.revoked], [200, 1]);
    assert.equal(code(await verify(other.access_token, 'strict')), 'session_revoked');

    // The user revokes their own session by id.
    r = await w.call('DELETE', `/v1/sessions/${t2.session.sid}`, { bearer: t2.access_token });
    assert.equal(r.status, 200);
    assert.equal(code(await verify(t2.access_token, 'strict')), 'session_revoked');
    assert.equal((await verify(t2.access_token, 'stateless')).status, 200, 'stateless verify cannot see revocation');
    assert.equal(code(await verify(t2.access_token)), 'session_revoked', 'the default, strict, sees it');

    // The service revokes by id with ?user= (any of its keys), and lists any user.
    const b = await create('bob@example.com');
    r = await w.call('DELETE', `/v1/sessions/${b.session.sid}?user=bob%40example.com`, { key: OTHER_API_KEY });
    assert.equal(r.status, 200);
    r = await w.call('GET', '/v1/users/bob%40example.com/sessions', { key: API_KEY });
    assert.deepEqual([r.status, r.body.sessions.length], [200, 0]);
  });

  test('user ids with + % / { } :, spaces and non-ASCII work on every user route (each in its own object)', async () => {
    await everyUserRouteWithHostileIds(w);
  });

  test('20 concurrent refreshes of one token all succeed with one successor', async () => {
    const t = await create('dana');
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(t.refresh_token)));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const successors = new Set(results.map((r) => r.body.refresh_token));
    assert.equal(successors.size, 1, 'one chain, never a fork');
    const [next] = successors;
    const r = await refresh(next);
    assert.equal(r.status, 200, 'the successor is usable');
    const list = await w.call('GET', '/v1/users/dana/sessions', { key: API_KEY });
    assert.equal(list.body.sessions.length, 1);
    assert.equal(list.body.sessions[0].generation, 2, 'two rotations: the 20 as one, then the successor');
  });

  test('the per-user limit holds under 20 concurrent creates (evict oldest)', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'erin' } })),
    );
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const list = await w.call('GET', '/v1/users/erin/sessions', { key: API_KEY });
    assert.equal(list.status, 200);
    assert.ok(list.body.sessions.length <= 3, `${list.body.sessions.length} sessions`);
    assert.equal(list.body.sessions.length, 3);
    // Exactly the live ones verify strictly; the evicted ones are revoked.
    const live = new Set(list.body.sessions.map((s) => s.sid));
    for (const r of results) {
      const v = await verify(r.body.access_token, 'strict');
      assert.equal(v.status === 200, live.has(r.body.session.sid), JSON.stringify(v.body));
    }
  });

  test('bad requests and wrong API keys get coded 4xx and change nothing stored', async () => {
    const t = await create('dave');
    await sleep(200);
    const before = doSnapshot(w.persist);
    assert.ok(before.length > 0, 'the objects persist to disk');
    for (const [method, path, opts, status, want] of badRequests(t)) {
      const r = await w.call(method, path, opts).catch((e) => assert.fail(`${method} ${path}: ${e.cause ?? e}`));
      assert.deepEqual([r.status, code(r)], [status, want], `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body.error.message.length > 0, 'a message that says what to do');
    }
    await sleep(200);
    assert.deepEqual(doSnapshot(w.persist), before, 'no object was created or written');
    assert.equal((await verify(t.access_token, 'strict')).status, 200);
    // The check can see a change: a real create writes.
    await create('dave');
    await sleep(200);
    assert.notDeepEqual(doSnapshot(w.persist), before);
  });

  test('errors never echo tokens', async () => {
    const t = await create('fay');
    const r = await verify(t.access_token + 'x', 'strict');
    assert.equal(r.status, 401);
    assert.ok(!JSON.stringify(r.body).includes(t.access_token));
    const bad = await w.call('POST', '/v1/refresh', {
      body: `{"refresh_token": "${t.refresh_token}" oops`,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bad.status, 400);
    assert.ok(!JSON.stringify(bad.body).includes(t.refresh_token));
  });
});

describe('Durable Object store, limit policy "refuse"', () => {
  let w;
  before(async () => {
    w = await startWorker({ store: 'durable', vars: { TOLLGATE_MAX_SESSIONS_PER_USER: 3, TOLLGATE_ON_LIMIT: 'refuse' } });
  });
  after(async () => w?.stop());

  test('20 concurrent creates: exactly 3 succeed, the rest get session_limit', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'gus' } })),
    );
    const ok = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => code(r) === 'session_limit');
    assert.equal(ok.length, 3);
    assert.equal(refused.length, 17);
    const list = await w.call('GET', '/v1/users/gus/sessions', { key: API_KEY });
    assert.equal(list.body.sessions.length, 3);
  });
});

describe('Durable Object store, expired rows', () => {
  let w;
  before(async () => {
    w = await startWorker({
      store: 'durable',
      vars: { TOLLGATE_ACCESS_TTL: '1s', TOLLGATE_IDLE_TTL: 2, TOLLGATE_ABSOLUTE_TTL: '2000ms', TOLLGATE_LEEWAY: '0' },
    });
  });
  after(async () => w?.stop());

  test("the object's alarm sweeps them with no request coming in", async () => {
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'hal' } });
    assert.equal(r.status, 201);
    await sleep(300);
    const written = doSnapshot(w.persist);
    // Index expires at 2 s, the record (kept for its 1 s access tokens) at 3 s.
    await sleep(4500);
    assert.notDeepEqual(doSnapshot(w.persist), written, 'the alarm deleted the expired rows');
    const list = await w.call('GET', '/v1/users/hal/sessions', { key: API_KEY });
    assert.deepEqual(list.body, { sessions: [] });
    assert.equal(code(await w.call('POST', '/v1/verify', { json: { token: r.body.access_token, mode: 'strict' } })), 'token_expired');
  });
});

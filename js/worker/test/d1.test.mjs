// The Worker on D1, in workerd (miniflare's D1: SQLite on disk): the whole
// flow, immediate revocation, reuse detection, concurrent refreshes and
// creates (each commit is two batches, guarded by the user's version counter),
// bad requests, expired rows, and the cron trigger's sweep.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, badRequests, code, d1Snapshot, everyUserRouteWithHostileIds, sleep, startWorker } from './harness.mjs';

const GRACE_MS = 1000;
const HOUR = 3600_000;

describe('D1 store', () => {
  let w;
  let db;
  before(async () => {
    w = await startWorker({
      store: 'd1',
      vars: { TOLLGATE_REFRESH_GRACE: `${GRACE_MS}ms`, TOLLGATE_MAX_SESSIONS_PER_USER: '3', TOLLGATE_ON_LIMIT: 'evict_oldest' },
    });
    db = await w.mf.getD1Database('TOLLGATE_DB');
  });
  after(async () => w?.stop());

  const create = async (user, metadata = { ua: 'd1' }) => {
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user, metadata } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const verify = (token, mode) => w.call('POST', '/v1/verify', { json: mode ? { token, mode } : { token } });
  const refresh = (refresh_token) => w.call('POST', '/v1/refresh', { json: { refresh_token } });

  test('devices: CF-Connecting-IP is the client (trusted_proxy none), the User-Agent is kept, the caller is current', async () => {
    const headers = { 'cf-connecting-ip': '2001:DB8::5', 'user-agent': 'Worker-UA/1' };
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'devi' }, headers });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual([r.body.session.ip, r.body.session.user_agent], ['2001:db8::5', 'Worker-UA/1']);
    const l = await w.call('GET', '/v1/users/devi/sessions', { bearer: r.body.access_token });
    assert.deepEqual(l.body.sessions.map((s) => [s.sid, s.current, s.ip]), [[r.body.session.sid, true, '2001:db8::5']]);
  });

  test('the whole flow over HTTP, stored in D1 under the schema the migrations made', async () => {
    const t = await create('alice');
    let r = await verify(t.access_token, 'strict');
    assert.equal(r.status, 200);
    assert.equal(r.body.session.metadata.ua, 'd1');
    r = await refresh(t.refresh_token);
    assert.equal(r.status, 200);
    const t2 = r.body;
    r = await w.call('GET', '/v1/users/alice/sessions', { bearer: t2.access_token });
    assert.deepEqual([r.status, r.body.sessions.length], [200, 1]);

    const { results: schema } = await db.prepare('SELECT version FROM tollgate_schema').all();
    assert.deepEqual(schema.map((s) => s.version), [1]);
    const { results: rows } = await db.prepare("SELECT key, tag, version FROM tollgate_kv WHERE tag = 'u:alice'").all();
    assert.deepEqual(rows.map((r) => r.key).sort(), [`i:{u:alice}`, `s:{u:alice}:${t.session.sid}`]);
    const counter = await db.prepare("SELECT version FROM tollgate_versions WHERE tag = 'u:alice'").first();
    assert.ok(rows.every((row) => row.version <= counter.version), 'the counter is ahead of every version it gave');

    r = await w.call('DELETE', `/v1/sessions/${t2.session.sid}?user=alice`, { key: API_KEY });
    assert.equal(r.status, 200);
    assert.equal(code(await verify(t2.access_token, 'strict')), 'session_revoked');
    assert.equal(code(await refresh(t2.refresh_token)), 'session_revoked');
    assert.equal((await verify(t2.access_token, 'stateless')).status, 200, 'stateless verify cannot see revocation');
  });

  test('user ids with reserved characters on every user route', async () => {
    await everyUserRouteWithHostileIds(w);
  });

  test('refresh reuse past the grace window revokes the session', async () => {
    const t = await create('carol');
    const first = await refresh(t.refresh_token);
    const again = await refresh(t.refresh_token);
    assert.equal(again.body.refresh_token, first.body.refresh_token, 'same successor within the grace window');
    await sleep(GRACE_MS + 300);
    assert.equal(code(await refresh(t.refresh_token)), 'refresh_token_reused');
    assert.equal(code(await verify(first.body.access_token, 'strict')), 'session_revoked');
  });

  test('20 concurrent refreshes of one token all succeed with one successor', async () => {
    const t = await create('dana');
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(t.refresh_token)));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const successors = new Set(results.map((r) => r.body.refresh_token));
    assert.equal(successors.size, 1, 'one chain, never a fork');
    const [next] = successors;
    assert.equal((await refresh(next)).status, 200, 'the successor is usable');
    const list = await w.call('GET', '/v1/users/dana/sessions', { key: API_KEY });
    assert.deepEqual(list.body.sessions.map((s) => s.generation), [2]);
  });

  test('the per-user limit holds under 20 concurrent creates (evict oldest)', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'erin' } })),
    );
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const list = await w.call('GET', '/v1/users/erin/sessions', { key: API_KEY });
    assert.equal(list.body.sessions.length, 3);
    const live = new Set(list.body.sessions.map((s) => s.sid));
    for (const r of results) {
      const v = await verify(r.body.access_token, 'strict');
      assert.equal(v.status === 200, live.has(r.body.session.sid), JSON.stringify(v.body));
    }
  });

  test('bad requests and wrong API keys get coded 4xx and change nothing stored', async () => {
    const t = await create('dave');
    const before = await d1Snapshot(w.mf);
    for (const [method, path, opts, status, want] of badRequests(t)) {
      const r = await w.call(method, path, opts);
      assert.deepEqual([r.status, code(r)], [status, want], `${method} ${path}: ${JSON.stringify(r.body)}`);
    }
    assert.deepEqual(await d1Snapshot(w.mf), before, 'no row was written');
    await create('dave');
    assert.notDeepEqual(await d1Snapshot(w.mf), before, 'the check can see a write');
  });

  test('an expired row is never read, and a new session replaces it', async () => {
    // Garbage that would be store_corrupt if it were ever returned.
    await db
      .prepare("INSERT INTO tollgate_kv (key, tag, version, expires_at, value) VALUES ('i:{u:zed}', 'u:zed', 1, ?1, ?2)")
      .bind(Date.now() - 1000, [0xde, 0xad])
      .run();
    let r = await w.call('GET', '/v1/users/zed/sessions', { key: API_KEY });
    assert.deepEqual([r.status, r.body.sessions], [200, []], JSON.stringify(r.body));
    const t = await create('zed');
    assert.equal((await verify(t.access_token, 'strict')).status, 200);
  });

  test('the cron trigger sweeps expired rows and stale counters, nothing live', async () => {
    const now = Date.now();
    const insert = (key, tag, expires) =>
      db.prepare('INSERT INTO tollgate_kv (key, tag, version, expires_at, value) VALUES (?1, ?2, 1, ?3, ?4)').bind(key, tag, expires, [1]).run();
    for (let i = 0; i < 30; i++) await insert(`i:{u:gone-${i}}`, `u:gone-${i}`, now - 5000);
    await db.prepare("INSERT INTO tollgate_versions (tag, version, expires_at) VALUES ('u:old', 5, ?1), ('u:recent', 5, ?2)")
      .bind(now - 2 * HOUR, now - 1000)
      .run();
    const count = async (sql) => (await db.prepare(sql).bind(Date.now()).first()).n;
    const liveBefore = await count('SELECT count(*) AS n FROM tollgate_kv WHERE expires_at > ?1');
    assert.ok((await count('SELECT count(*) AS n FROM tollgate_kv WHERE expires_at <= ?1')) >= 30);

    const worker = await w.mf.getWorker();
    await worker.scheduled({ cron: '*/30 * * * *' });

    assert.equal(await count('SELECT count(*) AS n FROM tollgate_kv WHERE expires_at <= ?1'), 0, 'expired rows are gone');
    assert.equal(await count('SELECT count(*) AS n FROM tollgate_kv WHERE expires_at > ?1'), liveBefore, 'live rows stay');
    const { results } = await db.prepare("SELECT tag FROM tollgate_versions WHERE tag IN ('u:old', 'u:recent')").all();
    assert.deepEqual(results.map((r) => r.tag), ['u:recent'], 'counters go an hour after their last value');
    assert.equal((await w.call('GET', '/v1/users/alice/sessions', { key: API_KEY })).status, 200);
  });
});

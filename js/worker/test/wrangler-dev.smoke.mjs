// Smoke test of wrangler.toml itself: scripts/test-worker.sh starts
// `wrangler dev --local` with this directory's config and passes its URL in
// TG_TEST_WORKER_URL. The bindings it declares (Durable Objects with the SQLite
// migration, KV) must work as written.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_KEY, code, request } from './harness.mjs';

const url = process.env.TG_TEST_WORKER_URL;
const call = (method, path, opts) => request(url, method, path, opts);

test('wrangler dev serves the Worker with the bindings of wrangler.toml', { skip: !url && 'TG_TEST_WORKER_URL not set' }, async () => {
  assert.deepEqual((await call('GET', '/healthz')).body, { status: 'ok' });
  const t = await call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'smoke' } });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  assert.equal((await call('POST', '/v1/verify', { json: { token: t.body.access_token, mode: 'strict' } })).status, 200);
  const r = await call('POST', '/v1/refresh', { json: { refresh_token: t.body.refresh_token } });
  assert.equal(r.status, 200);
  const rev = await call('DELETE', `/v1/sessions/${r.body.session.sid}?user=smoke`, { key: API_KEY });
  assert.equal(rev.status, 200);
  assert.equal(code(await call('POST', '/v1/verify', { json: { token: r.body.access_token, mode: 'strict' } })), 'session_revoked');
});

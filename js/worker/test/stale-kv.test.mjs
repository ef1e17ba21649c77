// Workers KV read from another location (issue 11, finding 1). KV caches reads at
// the edge, so a location may read a value as it was up to about 60 s ago, and a
// commit checks its expectations against that same read. test/entries/stale-kv.mjs
// puts the built Worker behind a KV binding that serves a request marked with
// `x-test-kv-as-of` the namespace as it was at that moment (its own writes
// included), writing to the real namespace. A refresh or a sliding-expiry touch
// made there writes the live record it saw over the tombstone; revocation must
// survive it: only revocations write the markers refresh and strict verify read.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { API_KEY, code, entriesDir, kvSnapshot, sleep, startWorker } from './harness.mjs';

describe('Workers KV: a stale location cannot bring a revoked session back', () => {
  let w;
  before(async () => {
    w = await startWorker({ store: 'kv', entry: join(entriesDir, 'stale-kv.mjs'), vars: { TOLLGATE_TOUCH_INTERVAL: '1s' } });
  });
  after(async () => w?.stop());

  /** Options for a request from the location that last read the store at `asOf`. */
  const from = (asOf, opts = {}) => ({ ...opts, headers: { ...opts.headers, 'x-test-kv-as-of': String(asOf) } });
  const now = async () => (await w.call('GET', '/__test/now')).body.now;
  const create = async (user) => {
    const r = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const strict = (token, opts = {}) => w.call('POST', '/v1/verify', { ...opts, json: { token, mode: 'strict' } });
  const refresh = (refresh_token, opts = {}) => w.call('POST', '/v1/refresh', { ...opts, json: { refresh_token } });
  const listed = async (user) => (await w.call('GET', `/v1/users/${user}/sessions`, { key: API_KEY })).body.sessions.map((s) => s.sid);
  const record = async (user, sid) => (await kvSnapshot(w.mf)).find(([k]) => k === `tollgate/s:{u:${user}}:${sid}`)?.[1];

  test('revoke, then a refresh and a touch from a stale location: revoked everywhere, and after the window', async () => {
    const t = await create('sam');
    const other = await create('sam');
    const seen = await now(); // the stale location's view of the store is from here
    await sleep(5);
    let r = await w.call('DELETE', `/v1/sessions/${t.session.sid}?user=sam`, { key: API_KEY });
    assert.equal(r.status, 200);
    const tombstone = await record('sam', t.session.sid);

    // Within the staleness bound the stale location still sees a live session, and its
    // commit's expectation read is stale too: the refresh succeeds and its write lands.
    r = await refresh(t.refresh_token, from(seen));
    assert.equal(r.status, 200, `the stale location saw the session live: ${JSON.stringify(r.body)}`);
    const revived = r.body;
    assert.notEqual(await record('sam', t.session.sid), tombstone, 'the live record was written over the tombstone');
    // A sliding-expiry touch from there writes the live record again.
    await sleep(1100);
    r = await strict(revived.access_token, from(seen));
    assert.equal(r.status, 200, JSON.stringify(r.body));

    // Every other location, and the stale one once its view is fresh: revoked.
    for (const token of [t.access_token, revived.access_token]) assert.equal(code(await strict(token)), 'session_revoked');
    assert.equal(code(await refresh(revived.refresh_token)), 'session_revoked');
    assert.equal(code(await refresh(t.refresh_token)), 'session_revoked');
    assert.deepEqual(await listed('sam'), [other.session.sid], 'list shows only the live session');
    assert.equal((await strict(other.access_token)).status, 200, 'the other session is untouched');
  });

  test('revoke-all, then a refresh from a stale location: revoked everywhere, the kept session lives', async () => {
    const t = await create('ria');
    const kept = await create('ria');
    const seen = await now();
    await sleep(5);
    let r = await w.call('DELETE', '/v1/users/ria/sessions?keep=current', { bearer: kept.access_token });
    assert.deepEqual([r.status, r.body.revoked], [200, 1]);

    r = await refresh(t.refresh_token, from(seen));
    assert.equal(r.status, 200, `the stale location saw the session live: ${JSON.stringify(r.body)}`);
    const revived = r.body;

    assert.equal(code(await strict(revived.access_token)), 'session_revoked');
    assert.equal(code(await refresh(revived.refresh_token)), 'session_revoked');
    assert.equal((await strict(kept.access_token)).status, 200, 'the session kept by revoke-all lives');
    assert.deepEqual(await listed('ria'), [kept.session.sid]);
    const later = await create('ria');
    assert.equal((await strict(later.access_token)).status, 200, 'a session signed in after the revoke-all lives');
  });
});

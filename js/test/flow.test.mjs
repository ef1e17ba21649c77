// The whole session flow through the npm API, on its default (memory) store: the
// configuration names, the shapes of what each method answers, and what a loader
// throws. What stores must do is the conformance suite's (conformance.mjs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createManager } from 'tollgate';
import { SECRET, rejectsWith, user } from './helpers.mjs';

describe('the npm API on its default store', () => {
  const make = (extra = {}) => createManager({ secret: SECRET, kid: 'h1', issuer: 'js-tests', audience: 'app', ...extra });

  test('issue, verify stateless and strict, refresh', async () => {
    const m = await make();
    const u = user('ann');
    const t = await m.issue(u, { claims: { role: 'admin' }, metadata: { device: 'laptop' } });
    assert.equal(typeof t.accessToken, 'string');
    assert.match(t.refreshToken, /^tgr_/);
    assert.ok(t.accessExpiresAt > Date.now());
    assert.deepEqual(t.session.metadata, { device: 'laptop' });
    assert.equal(t.session.user, u);
    assert.equal(t.session.generation, 0);

    const stateless = await m.verify(t.accessToken, 'stateless');
    assert.equal(stateless.claims.sub, u);
    assert.equal(stateless.claims.role, 'admin');
    assert.equal(stateless.claims.iss, 'js-tests');
    assert.equal(stateless.claims.aud, 'app');
    assert.equal(stateless.session, null);
    const strict = await m.verify(t.accessToken);
    assert.equal(strict.session.sid, t.session.sid);

    const next = await m.refresh(t.refreshToken);
    assert.notEqual(next.refreshToken, t.refreshToken);
    assert.equal(next.session.generation, 1);
    assert.equal(next.session.sid, t.session.sid);
    assert.equal((await m.verify(next.accessToken, 'strict')).claims.role, 'admin', 'claims carry over a refresh');
  });

  test('verifyMode, durations with units and audience lists read as on every surface', async () => {
    const m = await make({ verifyMode: 'stateless', accessTtl: '90s', refreshGrace: '500ms', audience: ['app', 'web'] });
    const t = await m.issue(user('vic'));
    const { claims, session } = await m.verify(t.accessToken);
    assert.equal(session, null, 'verify(token) is stateless when verifyMode says so');
    assert.equal(claims.exp - claims.iat, 90);
    assert.equal(claims.aud, 'app', 'the first audience is written');
    assert.notEqual((await m.verify(t.accessToken, 'strict')).session, null, 'strict is asked for by name');
    const listed = await make({ audience: 'other, app' }); // text is split on commas, as in the environment
    assert.equal((await listed.verify(t.accessToken, 'stateless')).claims.sub, t.session.user, 'any listed audience is accepted');
    const web = await make({ audience: 'web' });
    await rejectsWith(web.verify(t.accessToken, 'stateless'), 'token_invalid');
  });

  test('revoke, list, revokeAll and updateMetadata', async () => {
    const m = await make();
    const u = user('dan');
    const a = await m.issue(u, { metadata: { n: 1 } });
    const b = await m.issue(u, { metadata: { n: 2 } });
    const c = await m.issue(u, { metadata: { n: 3 } });
    const listed = await m.list(u);
    assert.deepEqual(listed.map((s) => s.metadata.n), [1, 2, 3], 'oldest first');

    await m.revoke(u, a.session.sid);
    await m.revoke(u, a.session.sid); // again: still fine
    await rejectsWith(m.verify(a.accessToken, 'strict'), 'session_revoked');
    await m.verify(a.accessToken, 'stateless'); // the signature stays valid until exp
    await rejectsWith(m.refresh(a.refreshToken), 'session_revoked');

    const updated = await m.updateMetadata(u, b.session.sid, { n: 20 });
    assert.deepEqual(updated.metadata, { n: 20 });
    assert.equal(await m.revokeAll(u, { except: c.session.sid }), 1);
    assert.deepEqual((await m.list(u)).map((s) => s.sid), [c.session.sid]);
    assert.equal(await m.revokeAll(u), 1);
    assert.deepEqual(await m.list(u), []);
    await rejectsWith(m.updateMetadata(u, c.session.sid, {}), 'session_revoked');
  });

  test('per-user limit: evict the oldest, or refuse', async () => {
    const evict = await make({ maxSessionsPerUser: 2 });
    const u = user('eve');
    const first = await evict.issue(u);
    await evict.issue(u);
    await evict.issue(u);
    await rejectsWith(evict.verify(first.accessToken, 'strict'), 'session_revoked');
    assert.equal((await evict.list(u)).length, 2);

    const single = await make({ maxSessionsPerUser: 1 });
    const v = user('fay');
    const one = await single.issue(v);
    const two = await single.issue(v);
    await rejectsWith(single.verify(one.accessToken, 'strict'), 'session_revoked');
    await single.verify(two.accessToken, 'strict');

    const refuse = await make({ maxSessionsPerUser: 1, onLimit: 'refuse' });
    const w = user('gus');
    const kept = await refuse.issue(w);
    await rejectsWith(refuse.issue(w), 'session_limit');
    await refuse.revoke(w, kept.session.sid);
    await refuse.issue(w);
  });

  test('user cache with a JS loader', async () => {
    const m = await make();
    const u = user('hal');
    let loads = 0;
    const loader = async (id) => {
      loads++;
      return { id, plan: 'pro', loads };
    };
    assert.equal(await m.userInfo(u), null);
    assert.deepEqual(await m.userInfo(u, loader), { id: u, plan: 'pro', loads: 1 });
    assert.deepEqual(await m.userInfo(u, loader), { id: u, plan: 'pro', loads: 1 }, 'a hit');
    assert.equal(loads, 1);
    await m.putUserInfo(u, { id: u, plan: 'free' });
    assert.equal((await m.userInfo(u, loader)).plan, 'free');
    assert.equal(await m.refreshUserInfo([u], loader), 1);
    assert.equal((await m.userInfo(u)).loads, 2);
    await m.deleteUserInfo(u);
    assert.equal(await m.userInfo(u), null);
    const mine = new Error('db down');
    await assert.rejects(m.userInfo(u, () => { throw mine; }), (e) => e === mine);
    assert.equal(await m.userInfo(u), null, 'nothing cached after a loader error');
  });
});

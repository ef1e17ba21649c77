// The Worker on Durable Objects (issue 11, finding 6): a request is routed to a
// user's object only when what names the user checks out in the Worker: an
// access token must pass the stateless checks (signature, expiry, issuer), a
// refresh token must be well formed. Forged requests wake no object (counted as
// the objects' database files in miniflare's persist directory) and get the same
// answer as from the KV Worker, which runs every request through the whole handler.

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { API_KEY, SECRET, code, doSnapshot, startWorker } from './harness.mjs';

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT with `claims` over the defaults, signed with `secret`. */
function jwt(claims, secret = SECRET) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: 'https://auth.test', sid: b64(randomBytes(16)), jti: 'forged', iat: now, exp: now + 600, ...claims };
  const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: 'k1' })}.${b64(body)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('Durable Objects: forged requests wake no object', () => {
  let durable;
  let kv;
  before(async () => {
    [durable, kv] = await Promise.all([startWorker({ store: 'durable' }), startWorker({ store: 'kv' })]);
  });
  after(async () => Promise.all([durable?.stop(), kv?.stop()]));

  /** The objects' database files (an object opens its store, and so its file, when it first serves a request). */
  const objects = () => doSnapshot(durable.persist).map(([path]) => path).filter((p) => p.endsWith('.sqlite') && !p.endsWith('/metadata.sqlite')).sort();

  test('bad signatures, expired or foreign tokens, garbage refresh tokens: no object, the same answers as KV', async () => {
    const real = await durable.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'ola' } });
    assert.equal(real.status, 201, JSON.stringify(real.body));
    const woken = objects();
    assert.equal(woken.length, 1, `ola's object holds her session: ${woken}`);

    const someone = () => `user-${randomBytes(6).toString('hex')}`;
    const [h, p] = real.body.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    const forged = [
      ['another secret', jwt({ sub: someone() }, 'a-secret-that-is-not-the-workers-32+')],
      ['the right secret, expired', jwt({ sub: someone(), iat: 1_000_000_000, exp: 1_000_000_600 })],
      ['the right secret, another issuer', jwt({ sub: someone(), iss: 'https://elsewhere' })],
      ['a real signature over another payload', `${h}.${b64({ ...claims, sub: someone() })}.${real.body.access_token.split('.')[2]}`],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT', kid: 'k1' })}.${b64({ ...claims, sub: someone() })}.`],
      ['garbage', 'not.a.token'],
    ];
    const requests = [];
    for (const [what, token] of forged) {
      const sub = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString() || 'null')?.sub ?? someone();
      requests.push([`${what}: strict verify`, 'POST', '/v1/verify', { json: { token, mode: 'strict' } }]);
      requests.push([`${what}: verify (strict by default)`, 'POST', '/v1/verify', { json: { token } }]);
      requests.push([`${what}: list`, 'GET', `/v1/users/${sub}/sessions`, { bearer: token }]);
      requests.push([`${what}: revoke all`, 'DELETE', `/v1/users/${sub}/sessions`, { bearer: token }]);
      requests.push([`${what}: revoke one`, 'DELETE', `/v1/sessions/${b64(randomBytes(16))}`, { bearer: token }]);
    }
    for (const refresh_token of ['tgr_garbage.x', `tgr_${b64(randomBytes(20))}.short`, `xyz_${b64(Buffer.concat([randomBytes(16), Buffer.from(someone())]))}.${b64(randomBytes(32))}`, '']) {
      requests.push([`refresh ${refresh_token}`, 'POST', '/v1/refresh', { json: { refresh_token } }]);
    }
    for (const [what, method, path, opts] of requests) {
      const here = await durable.call(method, path, opts);
      const there = await kv.call(method, path, opts);
      assert.ok(here.status === 401 || here.status === 400, `${what}: ${here.status} ${JSON.stringify(here.body)}`);
      assert.deepEqual([here.status, here.body], [there.status, there.body], `${what}: the same answer as the KV Worker's`);
    }
    assert.deepEqual(objects(), woken, 'no forged request woke an object');

    // Real requests still reach their objects.
    let r = await durable.call('POST', '/v1/verify', { json: { token: real.body.access_token } });
    assert.deepEqual([r.status, r.body.session?.user], [200, 'ola'], JSON.stringify(r.body));
    r = await durable.call('GET', '/v1/users/ola/sessions', { bearer: real.body.access_token });
    assert.deepEqual([r.status, r.body.sessions?.length], [200, 1], JSON.stringify(r.body));
    r = await durable.call('POST', '/v1/refresh', { json: { refresh_token: real.body.refresh_token } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // A token signed with the Worker's secret for a user with no object is real: it goes there.
    r = await durable.call('POST', '/v1/verify', { json: { token: jwt({ sub: 'pia' }), mode: 'strict' } });
    assert.equal(code(r), 'session_not_found');
    assert.equal(objects().length, 2, 'a valid token wakes its user\'s object');
  });
});

// Asymmetric signing keys in the Worker, through WebCrypto (the npm package's
// driver): ES256 and EdDSA sign in workerd, the JWKS publishes the public
// half, and Node's own WebCrypto verifies what the Worker signed.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { API_KEY, code, startWorker } from './harness.mjs';

const keys = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'tests', 'keys');
const b64url = (s) => Buffer.from(s, 'base64url');

/** With an asymmetric signing key there is no secret to derive the record MAC key from: it is set. */
const REFRESH_SECRET = 'worker-test-refresh-secret-of-32-bytes';

const cases = [
  { alg: 'ES256', pem: 'es256.pem', stores: ['durable', 'kv'], subtle: { name: 'ECDSA', namedCurve: 'P-256' }, params: { name: 'ECDSA', hash: 'SHA-256' } },
  { alg: 'EdDSA', pem: 'ed25519.pem', stores: ['durable'], subtle: { name: 'Ed25519' }, params: { name: 'Ed25519' } },
];

for (const c of cases) {
  for (const store of c.stores) {
    describe(`${c.alg} on ${store}`, () => {
      let w;
      before(async () => {
        const pem = readFileSync(join(keys, c.pem), 'utf8');
        w = await startWorker({ store, vars: { TOLLGATE_SECRET: '', TOLLGATE_ALG: c.alg, TOLLGATE_KID: 'sig-1', TOLLGATE_SIGNING_KEY: pem, TOLLGATE_REFRESH_SECRET: REFRESH_SECRET } });
      });
      after(async () => w?.stop());

      test('JWKS, create, verify, refresh; the signature checks out in Node', async () => {
        const jwks = await w.call('GET', '/.well-known/jwks.json');
        assert.equal(jwks.status, 200);
        assert.equal(jwks.body.keys.length, 1);
        const jwk = jwks.body.keys[0];
        assert.deepEqual([jwk.kid, jwk.alg, jwk.use], ['sig-1', c.alg, 'sig']);
        assert.equal(jwk.d, undefined, 'no private member is published');

        const t = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'ada' } });
        assert.equal(t.status, 201, JSON.stringify(t.body));
        const [h, p, s] = t.body.access_token.split('.');
        assert.equal(JSON.parse(b64url(h)).alg, c.alg);
        const pub = await crypto.subtle.importKey('jwk', jwk, c.subtle, false, ['verify']);
        assert.ok(await crypto.subtle.verify(c.params, pub, b64url(s), new TextEncoder().encode(`${h}.${p}`)));

        for (const mode of ['stateless', 'strict']) {
          const v = await w.call('POST', '/v1/verify', { json: { token: t.body.access_token, mode } });
          assert.equal(v.status, 200, JSON.stringify(v.body));
          assert.equal(v.body.claims.sub, 'ada');
        }
        const forged = `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`;
        assert.equal(code(await w.call('POST', '/v1/verify', { json: { token: forged } })), 'token_invalid');

        const r = await w.call('POST', '/v1/refresh', { json: { refresh_token: t.body.refresh_token } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const v = await w.call('POST', '/v1/verify', { json: { token: r.body.access_token, mode: 'strict' } });
        assert.equal(v.status, 200);
      });

      if (store === 'durable') {
        // Signing awaits WebCrypto, which lets other requests into the object
        // mid-operation: stale commits conflict and start again.
        test('20 concurrent refreshes still leave one successor', async () => {
          const t = await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'bea' } });
          const results = await Promise.all(
            Array.from({ length: 20 }, () => w.call('POST', '/v1/refresh', { json: { refresh_token: t.body.refresh_token } })),
          );
          for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
          assert.equal(new Set(results.map((r) => r.body.refresh_token)).size, 1);
        });
      }
    });
  }
}

// Rotation across algorithms: the old Worker signed HS512 for audience "web";
// the new one signs RS256, keeps the old key for verification only (plus an
// EdDSA public key of another issuer), and accepts both audiences.
describe('several keys, every kind of algorithm, audience lists', () => {
  const OLD_SECRET = 'the-previous-hs512-secret-of-sixty-four-bytes-0123456789abcdefgh';
  const pem = (name) => readFileSync(join(keys, name), 'utf8');
  let old;
  let now;
  before(async () => {
    old = await startWorker({ store: 'durable', vars: { TOLLGATE_SECRET: OLD_SECRET, TOLLGATE_ALG: 'HS512', TOLLGATE_KID: 'old', TOLLGATE_AUDIENCE: 'web' } });
    const verifyKeys = [
      { kid: 'old', alg: 'HS512', secret: OLD_SECRET },
      { kid: 'partner', alg: 'EdDSA', pem: pem('ed25519.pub.pem') },
    ];
    now = await startWorker({
      store: 'durable',
      vars: {
        TOLLGATE_SECRET: '',
        TOLLGATE_SIGNING_KEY: pem('rs256.pem'),
        TOLLGATE_ALG: 'RS256',
        TOLLGATE_KID: 'new',
        // The rotation recipe: the old HMAC secret stays the refresh secret, so the sessions it sealed stay readable.
        TOLLGATE_REFRESH_SECRET: OLD_SECRET,
        TOLLGATE_VERIFY_KEYS: JSON.stringify(verifyKeys),
        TOLLGATE_AUDIENCE: 'api, web',
      },
    });
  });
  after(async () => Promise.all([old?.stop(), now?.stop()]));

  test('the new Worker verifies the old tokens; the old one refuses the new', async () => {
    const oldToken = (await old.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'cy' } })).body.access_token;
    const t = await now.call('POST', '/v1/sessions', { key: API_KEY, json: { user: 'cy' } });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const [h, p, s] = t.body.access_token.split('.');
    assert.equal(JSON.parse(b64url(h)).alg, 'RS256');

    let v = await now.call('POST', '/v1/verify', { json: { token: t.body.access_token } });
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.deepEqual([v.body.claims.aud, v.body.session.user], ['api', 'cy'], 'the first audience is written; strict by default');
    v = await now.call('POST', '/v1/verify', { json: { token: oldToken, mode: 'stateless' } });
    assert.equal(v.status, 200, JSON.stringify(v.body));
    assert.equal(v.body.claims.aud, 'web', 'the old key verifies, and audience web is accepted');
    assert.equal(code(await old.call('POST', '/v1/verify', { json: { token: t.body.access_token, mode: 'stateless' } })), 'token_invalid');

    const jwks = (await now.call('GET', '/.well-known/jwks.json')).body;
    assert.deepEqual(jwks.keys.map((k) => [k.kid, k.alg]), [['new', 'RS256'], ['partner', 'EdDSA']], 'public keys only; never the HMAC key');
    const pub = await crypto.subtle.importKey('jwk', jwks.keys[0], { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
    assert.ok(await crypto.subtle.verify({ name: 'RSASSA-PKCS1-v1_5' }, pub, b64url(s), new TextEncoder().encode(`${h}.${p}`)));
  });
});

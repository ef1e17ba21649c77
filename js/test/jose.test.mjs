// Interop with jose: tollgate's tokens verify with jose through jwks(); jose's
// tokens verify in tollgate; forged ones (wrong key, alg none, HS256 keyed with
// the public key) are refused.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import * as jose from 'jose';
import { createManager } from 'tollgate';
import { SECRET, rejectsWith, user } from './helpers.mjs';

const ISS = 'jose-interop';

async function pair(alg) {
  const keys = await jose.generateKeyPair(alg, { extractable: true });
  return { ...keys, pem: await jose.exportPKCS8(keys.privateKey), spki: await jose.exportSPKI(keys.publicKey) };
}

function joseToken(claims = {}) {
  return new jose.SignJWT({ sid: 'AAAAAAAAAAAAAAAAAAAAAA', ...claims })
    .setSubject('jose-user')
    .setIssuer(ISS)
    .setIssuedAt()
    .setExpirationTime('5m');
}

/** header.payload signed with HMAC-SHA-256 under `key`, by hand (jose refuses to key HS256 with a PEM). */
function hs256(header, payload, key) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

describe('jose interop', () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    test(`${alg}: both ways, and forgeries refused`, async () => {
      const k = await pair(alg);
      const m = await createManager({ signingKey: k.pem, alg, kid: 'k1', issuer: ISS, refreshSecret: 'js-test-refresh-secret-of-32-bytes-or-more' });

      // tollgate -> jose, through the JWKS.
      const t = await m.issue(user('amy'), { claims: { role: 'reader' } });
      const jwks = m.jwks();
      assert.equal(jwks.keys.length, 1);
      assert.equal(jwks.keys[0].kid, 'k1');
      assert.equal(jwks.keys[0].alg, alg);
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(jwks.keys[0][priv], undefined);
      const { payload, protectedHeader } = await jose.jwtVerify(t.accessToken, jose.createLocalJWKSet(jwks), { issuer: ISS, algorithms: [alg] });
      assert.equal(payload.role, 'reader');
      assert.equal(protectedHeader.kid, 'k1');

      // jose -> tollgate, same key.
      const signed = await joseToken({ role: 'writer' }).setProtectedHeader({ alg, kid: 'k1' }).sign(k.privateKey);
      assert.equal((await m.verify(signed, 'stateless')).claims.role, 'writer');
      // It names a session tollgate never made: strict verification says so.
      await rejectsWith(m.verify(signed, 'strict'), 'session_not_found');

      // A verifier given only the public key (SPKI PEM) accepts both.
      const verifier = await createManager({ secret: SECRET, kid: 'h1', verifyKeys: [{ kid: 'k1', alg, pem: k.spki }], issuer: ISS });
      await verifier.verify(signed, 'stateless');
      await verifier.verify(t.accessToken, 'stateless');

      // Signed with another key under the same kid.
      const other = await pair(alg);
      const forged = await joseToken().setProtectedHeader({ alg, kid: 'k1' }).sign(other.privateKey);
      await rejectsWith(m.verify(forged, 'stateless'), 'token_invalid');

      // alg none.
      const none = new jose.UnsecuredJWT({ sub: 'jose-user', iss: ISS, sid: 'AAAAAAAAAAAAAAAAAAAAAA' }).setExpirationTime('5m').encode();
      await rejectsWith(m.verify(none, 'stateless'), 'token_invalid');
      const noneWithKid = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'k1' })).toString('base64url')}.${none.split('.')[1]}.`;
      await rejectsWith(m.verify(noneWithKid, 'stateless'), 'token_invalid');

      // HS256 keyed with the public key (the classic algorithm confusion), as PEM and as JWK text.
      const claims = { sub: 'jose-user', iss: ISS, exp: Math.floor(Date.now() / 1000) + 300 };
      for (const key of [k.spki, JSON.stringify(jwks.keys[0])]) {
        await rejectsWith(m.verify(hs256({ alg: 'HS256', kid: 'k1', typ: 'JWT' }, claims, key), 'stateless'), 'token_invalid');
        await rejectsWith(m.verify(hs256({ alg: 'HS256', typ: 'JWT' }, claims, key), 'stateless'), 'token_invalid');
      }

      // A token that carries its own key is refused even when the key is right.
      const jwk = await jose.exportJWK(k.publicKey);
      const embedded = await joseToken().setProtectedHeader({ alg, kid: 'k1', jwk }).sign(k.privateKey);
      await rejectsWith(m.verify(embedded, 'stateless'), 'token_invalid');
    });
  }

  test('HS256 both ways with the shared secret; wrong secret refused', async () => {
    const m = await createManager({ secret: SECRET, kid: 'h1', issuer: ISS });
    const secret = new TextEncoder().encode(SECRET);
    const t = await m.issue(user('bob'));
    const { payload } = await jose.jwtVerify(t.accessToken, secret, { issuer: ISS, algorithms: ['HS256'] });
    assert.equal(payload.sid, t.session.sid);

    const signed = await joseToken({ n: 7 }).setProtectedHeader({ alg: 'HS256', kid: 'h1' }).sign(secret);
    assert.equal((await m.verify(signed, 'stateless')).claims.n, 7);
    const wrong = await joseToken().setProtectedHeader({ alg: 'HS256', kid: 'h1' }).sign(new TextEncoder().encode('another secret of at least thirty-two bytes'));
    await rejectsWith(m.verify(wrong, 'stateless'), 'token_invalid');
    const expired = await joseToken().setProtectedHeader({ alg: 'HS256', kid: 'h1' }).setExpirationTime(Math.floor(Date.now() / 1000) - 120).sign(secret);
    await rejectsWith(m.verify(expired, 'stateless'), 'token_expired');
    const otherIssuer = await joseToken().setIssuer('someone-else').setProtectedHeader({ alg: 'HS256', kid: 'h1' }).sign(secret);
    await rejectsWith(m.verify(otherIssuer, 'stateless'), 'token_invalid');
  });

  test('keys given as JWKs (exported by jose) sign and verify', async () => {
    for (const alg of ['ES256', 'EdDSA']) {
      const k = await pair(alg);
      const jwk = await jose.exportJWK(k.privateKey);
      const m = await createManager({ signingKey: jwk, kid: 'j1', issuer: ISS, refreshSecret: 'js-test-refresh-secret-of-32-bytes-or-more' });
      const t = await m.issue(user('cy'));
      await jose.jwtVerify(t.accessToken, k.publicKey, { issuer: ISS, algorithms: [alg] });
      // A JWK whose private part belongs to another key is refused at load.
      const other = await jose.exportJWK((await pair(alg)).privateKey);
      await rejectsWith(createManager({ signingKey: { ...jwk, d: other.d }, kid: 'j1', refreshSecret: 'js-test-refresh-secret-of-32-bytes-or-more' }), 'config_invalid');
    }
  });
});

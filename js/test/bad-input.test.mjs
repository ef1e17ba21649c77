// Bad input from JavaScript: each call rejects with a coded TollgateError (never
// a wasm trap, never a synchronous throw) and the instance keeps working.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createManager } from 'tollgate';
import { SECRET, rejectsWith, user } from './helpers.mjs';
import { mapData, mapStore } from './map-store.mjs';

const config = (extra = {}) => ({ secret: SECRET, kid: 'h1', ...extra });
const wrongTypes = [undefined, null, 42, 0, NaN, true, {}, [], () => 'x', Symbol('s'), 10n, new Date(0), new Uint8Array(4)];
const huge = 'x'.repeat(8 * 1024 * 1024);

async function stillWorks(m) {
  const t = await m.issue(user('ok'));
  await m.verify(t.accessToken, 'strict');
  await m.refresh(t.refreshToken);
}

describe('bad input', () => {
  test('createManager refuses bad configurations with config_invalid', async () => {
    const bad = [
      undefined,
      null,
      'HS256',
      42,
      {},
      { keys: { kid: 'h1', secret: SECRET } },
      { secret: 'too short' },
      { secret: 12345678901234567890123456789012 },
      { secret: SECRET, signingKey: '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----' },
      config({ kid: 'has space' }),
      config({ alg: 'none' }),
      config({ alg: 'ES256' }),
      { signingKey: '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----', alg: 'ES256', refreshSecret: 'js-test-refresh-secret-of-32-bytes-or-more' },
      { signingKey: huge, alg: 'ES256' },
      { signingKey: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } },
      { signingKey: 'not a jwk' },
      config({ verifyKeys: [{ kid: 'h1', secret: SECRET }] }),
      config({ verifyKeys: [{ kid: 'h0' }] }),
      config({ verifyKeys: { kid: 'h0', secret: SECRET } }),
      config({ verifyKeys: [{ kid: 'h0', secret: SECRET, extra: 1 }] }),
      config({ verifyKeys: [{ kid: 'h0', alg: 'ES256', pem: '-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----' }] }),
      config({ accessTtl: '15 minutes' }),
      config({ accessTtl: -1 }),
      config({ accessTtl: Infinity }),
      config({ idleTtl: 10, absoluteTtl: 5 }),
      config({ maxSessionsPerUser: 0 }),
      config({ maxSessionsPerUser: 1.5 }),
      config({ onLimit: 'panic' }),
      config({ onLimit: 'evict' }),
      config({ verifyMode: 'lenient' }),
      config({ refreshPrefix: 'UPPER' }),
      config({ typo: true }),
      config({ apiKeys: 'a-service-key-0123456789' }),
      config({ issuer: 5 }),
      config({ audience: [1] }),
      config({ store: {} }),
      config({ store: { get: 'no', commit: () => true } }),
      config({ store: 5 }),
    ];
    for (const [i, c] of bad.entries()) {
      const err = await rejectsWith(createManager(c), 'config_invalid').catch((e) => {
        throw new Error(`case ${i}: ${e.message}`);
      });
      assert.ok(!err.message.includes(SECRET), 'no secret in messages');
    }
    const cyclic = config();
    cyclic.self = cyclic;
    await rejectsWith(createManager(cyclic), 'config_invalid');
    await stillWorks(await createManager(config()));
  });

  test('a refused configuration names the field, never its value', async () => {
    const hidden = 'hunter2-hunter2-hunter2-hunter2-hunter2';
    const cases = [
      [{ secret: SECRET, accesTtl: 5 }, 'accesTtl is not a setting'],
      [{ keys: { kid: 'h1', secret: hidden } }, 'keys is no longer a setting: use secret (or signingKey)'],
      [{ secret: hidden, accessTtl: hidden }, 'accessTtl is not a duration'],
      [{ secret: hidden, onLimit: 'evict' }, 'onLimit must be one of evict_oldest, refuse'],
      [{ secret: hidden, verifyKeys: hidden }, 'verifyKeys is not a JSON array'],
      [{ secret: hidden, verifyKeys: [{ kid: 'k0', alg: 'HS256', secret: 'short' }] }, 'verifyKeys key #1 must be at least 32 bytes'],
      [{ signingKey: hidden }, 'signingKey is neither a PEM'],
      [{ signingKey: `-----BEGIN PRIVATE KEY-----\n${hidden}\n-----END PRIVATE KEY-----`, alg: 'ES256', refreshSecret: 'js-test-refresh-secret-of-32-bytes-or-more' }, 'signingKey is not usable'],
      [{ signingKey: `-----BEGIN PRIVATE KEY-----\n${hidden}\n-----END PRIVATE KEY-----`, alg: 'ES256' }, 'refreshSecret is required when signingKey is asymmetric'],
      [{ secret: hidden, refreshSecret: 'short' }, 'refreshSecret must be at least 32 bytes'],
      [{ secret: 'short' }, 'secret must be at least 32 bytes for HS256'],
      [{ secret: hidden, idleTtl: '40d' }, 'idleTtl cannot exceed absoluteTtl'],
      [{}, 'secret is not set'],
    ];
    for (const [c, expected] of cases) {
      const err = await rejectsWith(createManager(c), 'config_invalid');
      assert.ok(err.message.startsWith(expected), `${JSON.stringify(Object.keys(c))}: ${err.message}`);
      assert.ok(!err.message.includes(hidden), err.message);
    }
  });

  test('wrong argument types are bad_request / token_invalid', async () => {
    const m = await createManager(config());
    for (const v of wrongTypes) {
      await rejectsWith(m.issue(v), 'bad_request');
      await rejectsWith(m.verify(v), 'token_invalid');
      await rejectsWith(m.refresh(v), 'token_invalid');
      await rejectsWith(m.list(v), 'bad_request');
      await rejectsWith(m.revoke(v, 'AAAAAAAAAAAAAAAAAAAAAA'), 'bad_request');
      await rejectsWith(m.revoke('someone', v), 'bad_request');
      await rejectsWith(m.revokeAll(v), 'bad_request');
      await rejectsWith(m.updateMetadata(v, 'AAAAAAAAAAAAAAAAAAAAAA', {}), 'bad_request');
      await rejectsWith(m.userInfo(v), 'bad_request');
      await rejectsWith(m.putUserInfo(v, {}), 'bad_request');
      await rejectsWith(m.deleteUserInfo(v), 'bad_request');
      if (typeof v !== 'function' && v !== undefined && v !== null) {
        await rejectsWith(m.userInfo('u', v), 'bad_request');
        await rejectsWith(m.refreshUserInfo('u', v), 'bad_request');
      }
      if (v !== undefined && v !== null && typeof v !== 'object') {
        await rejectsWith(m.issue('u', v), 'bad_request');
        await rejectsWith(m.revokeAll('u', v), 'bad_request');
      }
      if (v !== undefined && v !== null) await rejectsWith(m.verify('a.b.c', v), 'bad_request');
    }
    await rejectsWith(m.issue('u', { claims: 'x' }), 'bad_request');
    await rejectsWith(m.issue('u', { claims: { exp: 1 } }), 'bad_request');
    await rejectsWith(m.issue('u', { unknown: 1 }), 'bad_request');
    await rejectsWith(m.issue('u', { metadata: 10n }), 'bad_request');
    await rejectsWith(m.putUserInfo('u', undefined), 'bad_request');
    await rejectsWith(m.putUserInfo('u', Symbol('s')), 'bad_request');
    await rejectsWith(m.revokeAll('u', { except: 5 }), 'bad_request');
    await rejectsWith(m.refreshUserInfo([1, 2], async () => ({})), 'bad_request');
    await rejectsWith(m.userInfo('u', () => undefined), 'bad_request');
    await rejectsWith(m.userInfo('u', () => 10n), 'bad_request');
    await stillWorks(m);
  });

  test('huge strings and objects are refused before they are copied', async () => {
    const m = await createManager(config());
    await rejectsWith(m.issue(huge), 'bad_request');
    await rejectsWith(m.issue('u', { metadata: huge }), 'bad_request');
    await rejectsWith(m.issue('u', { claims: { big: huge.slice(0, 100_000) } }), 'bad_request');
    await rejectsWith(m.verify(huge), 'token_invalid');
    await rejectsWith(m.verify(`${huge}.${huge}.${huge}`), 'token_invalid');
    await rejectsWith(m.refresh(huge), 'token_invalid');
    await rejectsWith(m.putUserInfo('u', { a: huge }), 'bad_request');
    await rejectsWith(m.issue('u'.repeat(257)), 'bad_request');
    await rejectsWith(m.issue('bad\nuser'), 'bad_request');
    await stillWorks(m);
  });

  test('garbage tokens are token_invalid', async () => {
    const m = await createManager(config());
    const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
    const t = await m.issue(user('gar'));
    const [h, p, s] = t.accessToken.split('.');
    const garbage = [
      '',
      '.',
      '..',
      '...',
      'a.b',
      'a.b.c.d',
      `${h}.${p}`,
      `${h}.${p}.`,
      `${h}.${p}.${s}x`,
      `${h}.${p}.${s.slice(0, -1)}`,
      `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url')), sub: 'admin' })}.${s}`,
      `${b64({ alg: 'HS256', kid: 'other' })}.${p}.${s}`,
      `${b64({ alg: 'HS512', kid: 'h1' })}.${p}.${s}`,
      `${b64({ alg: 'none' })}.${p}.`,
      `${b64('not json')}.${p}.${s}`,
      `${b64([1, 2])}.${p}.${s}`,
      `${b64({ alg: 'HS256', kid: 'h1', crit: ['exp'] })}.${p}.${s}`,
      `${b64({ alg: 'HS256', kid: 'h1', jku: 'https://evil.invalid/jwks' })}.${p}.${s}`,
      `${h}.${b64('\u0000\uffff')}.${s}`,
      '\u{1F600}.\u{1F600}.\u{1F600}',
      'tgr_abc.def',
    ];
    for (const [i, g] of garbage.entries()) {
      await rejectsWith(m.verify(g, 'stateless'), 'token_invalid').catch((e) => {
        throw new Error(`case ${i}: ${e.message}`);
      });
      await rejectsWith(m.verify(g, 'strict'), 'token_invalid');
    }
    for (const g of ['', 'tgr_', 'tgr_.', 'tgr_a.b', 'xyz_abc.def', `tgr_${'A'.repeat(40)}.${'A'.repeat(43)}`, t.accessToken, 'tgr_\u{1F600}.x']) {
      await rejectsWith(m.refresh(g), 'token_invalid');
    }
    // A refresh token for a session that does not exist (well-formed, random).
    const locator = Buffer.concat([Buffer.alloc(16, 7), Buffer.from('nobody')]).toString('base64url');
    await rejectsWith(m.refresh(`tgr_${locator}.${Buffer.alloc(32, 9).toString('base64url')}`), 'session_not_found');
    await stillWorks(m);
  });

  test('a JS store that throws or answers garbage is store_unavailable / store_corrupt', async () => {
    const bytes = (text) => new TextEncoder().encode(text);
    const detached = () => {
      const b = new Uint8Array(4);
      structuredClone(b.buffer, { transfer: [b.buffer] });
      return b;
    };
    let mode = 'ok';
    const data = new Map();
    let version = 0;
    const store = {
      get(keys) {
        switch (mode) {
          case 'throw': throw new Error('ECONNREFUSED');
          case 'throw-string': throw 'just a string';
          case 'reject': return Promise.reject(new TypeError('boom'));
          case 'undefined': return undefined;
          case 'object': return { length: keys.length };
          case 'short': return [];
          case 'entry': return keys.map(() => 'a string');
          case 'value': return keys.map(() => ({ value: 5, version: 1 }));
          case 'string': return keys.map(() => ({ value: '{}', version: 1 }));
          case 'view': return keys.map(() => ({ value: new DataView(new ArrayBuffer(2)), version: 1 }));
          case 'fake': return keys.map(() => ({ value: Object.create(Uint8Array.prototype), version: 1 }));
          case 'detached': return keys.map(() => ({ value: detached(), version: 1 }));
          case 'bytes': return keys.map(() => ({ value: new Uint8Array(2), version: 1 }));
          case 'version': return keys.map(() => ({ value: bytes('{}'), version: 1.5 }));
          case 'json': return keys.map(() => ({ value: bytes('{not json'), version: 1 }));
          default: return keys.map((k) => data.get(k) ?? null);
        }
      },
      commit(ops) {
        if (mode === 'commit-throw') throw new Error('READONLY');
        if (mode === 'commit-garbage') return 'committed';
        for (const op of ops) {
          const cur = data.get(op.key);
          if (op.expect === 'absent' ? cur : op.expect === 'version' && String(cur?.version) !== String(op.version)) return false;
        }
        for (const op of ops) {
          if (op.type === 'put') data.set(op.key, { value: op.value, version: ++version });
          else data.delete(op.key);
        }
        return true;
      },
    };
    const m = await createManager(config({ store }));
    const t = await m.issue(user('sto'));
    for (const [m2, code] of [
      ['throw', 'store_unavailable'],
      ['throw-string', 'store_unavailable'],
      ['reject', 'store_unavailable'],
      ['commit-throw', 'store_unavailable'],
      ['undefined', 'store_corrupt'],
      ['object', 'store_corrupt'],
      ['short', 'store_corrupt'],
      ['entry', 'store_corrupt'],
      ['value', 'store_corrupt'],
      ['string', 'store_corrupt'],
      ['view', 'store_corrupt'],
      ['fake', 'store_corrupt'],
      ['detached', 'store_corrupt'],
      ['bytes', 'store_corrupt'],
      ['version', 'store_corrupt'],
      ['json', 'store_corrupt'],
      ['commit-garbage', 'store_corrupt'],
    ]) {
      mode = m2;
      await rejectsWith(m.issue(user('sto')), code);
      if (!m2.startsWith('commit')) await rejectsWith(m.verify(t.accessToken, 'strict'), code);
      // Stateless verification needs no store.
      await m.verify(t.accessToken, 'stateless');
    }
    mode = 'ok';
    await stillWorks(m);
  });

  test('getters and Proxy traps that throw are coded errors, never a trap through wasm', async () => {
    const boom = () => {
      throw new Error('trap');
    };
    const handler = { get: boom, has: boom, ownKeys: boom, getPrototypeOf: boom, getOwnPropertyDescriptor: boom };
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const hostile = [revoked, new Proxy({}, handler), new Proxy([], handler), { get keys() { return boom(); } }];
    let answer = null;
    const store = {
      get: async (keys) => (answer === null ? keys.map(() => null) : answer),
      commit: async () => true,
    };
    const m = await createManager(config({ store }));
    for (const v of hostile) {
      await rejectsWith(createManager(v), 'config_invalid');
      await rejectsWith(createManager({ secret: SECRET, verifyKeys: v }), 'config_invalid');
      await rejectsWith(createManager(config({ store: v })), 'config_invalid');
      await rejectsWith(m.issue(v), 'bad_request');
      await rejectsWith(m.issue('u', v), 'bad_request');
      await rejectsWith(m.issue('u', { metadata: v }), 'bad_request');
      await rejectsWith(m.issue('u', { claims: { x: v } }), 'bad_request');
      await rejectsWith(m.verify(v), 'token_invalid');
      await rejectsWith(m.verify('a.b.c', v), 'bad_request');
      await rejectsWith(m.revokeAll('u', v), 'bad_request');
      await rejectsWith(m.updateMetadata('u', 'AAAAAAAAAAAAAAAAAAAAAA', v), 'bad_request');
      await rejectsWith(m.putUserInfo('u', v), 'bad_request');
      await rejectsWith(m.refreshUserInfo(v, async () => ({})), 'bad_request');
      await rejectsWith(m.userInfo('u', () => [v]), 'bad_request');
      // A store answer that is (or holds) such a value.
      answer = [v];
      await rejectsWith(m.issue(user('px')), 'store_corrupt');
      answer = null;
    }
    // Values that look like bytes but are not, or whose own getters throw.
    const proxied = new Proxy(new Uint8Array(2), handler);
    const lying = Object.defineProperty(new Uint8Array(2), 'length', { get: boom });
    for (const value of [proxied, lying]) {
      answer = [{ value, version: 1 }];
      await rejectsWith(m.issue(user('px')), 'store_corrupt');
    }
    answer = null;
    // Resolving a promise with a thenable whose `then` throws rejects it: the store "failed".
    answer = new Proxy({}, handler);
    await rejectsWith(m.issue(user('px')), 'store_unavailable');
    answer = null;
    const thrown = await m.userInfo('u', () => new Proxy({}, handler)).catch((e) => e);
    assert.equal(thrown.message, 'trap', "a loader's failure comes back as it was");
    // Still working (this store keeps nothing, so no strict verify here).
    const t = await m.issue(user('px'));
    await m.verify(t.accessToken, 'stateless');
  });

  test('a Redis transport that fails or answers garbage is store_unavailable / store_corrupt', async () => {
    const header = (version) => {
      const b = new Uint8Array(9);
      b[0] = 0xf1;
      new DataView(b.buffer).setBigUint64(1, BigInt(version));
      return b;
    };
    let mode = 'ok';
    const transport = {
      kind: 'tollgate-redis',
      prefix: 'bad:',
      defineCommit() {},
      async mget(keys) {
        switch (mode) {
          case 'reject': throw new Error('Connection is closed.');
          case 'wrongtype': throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
          case 'text': return keys.map(() => 'text');
          case 'short': return [];
          case 'old-format': return keys.map(() => new TextEncoder().encode('00000000000000ff{}'));
          case 'header-only': return keys.map(() => header(5).subarray(0, 8));
          case 'not-json': return keys.map(() => new Uint8Array([...header(5), 0x7b]));
          default: return keys.map(() => null);
        }
      },
      async commit() {
        if (mode === 'commit-wrongtype') throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value script: 1f, on @user_script:20.');
        return mode === 'commit-garbage' ? 'OK' : mode === 'commit-two' ? 2 : 1;
      },
    };
    const m = await createManager(config({ store: transport }));
    // Reads through a list (a sign-in under the limit commits without reading: one trip).
    for (const [m2, code] of [
      ['reject', 'store_unavailable'],
      ['wrongtype', 'store_corrupt'],
      ['text', 'store_corrupt'],
      ['short', 'store_corrupt'],
      ['old-format', 'store_corrupt'],
      ['header-only', 'store_corrupt'],
      ['not-json', 'store_corrupt'],
    ]) {
      mode = m2;
      await rejectsWith(m.list(user('rt')), code);
    }
    for (const [m2, code] of [
      ['commit-wrongtype', 'store_corrupt'],
      ['commit-garbage', 'store_corrupt'],
      ['commit-two', 'store_corrupt'],
    ]) {
      mode = m2;
      await rejectsWith(m.issue(user('rt')), code);
    }
    mode = 'ok';
    await m.issue(user('rt'));
    // A transport missing a method, refusing the script, or with a prefix that would move the hash tag.
    for (const bad of [
      { ...transport, mget: undefined },
      { ...transport, defineCommit: () => { throw new Error('no scripts here'); } },
      { ...transport, prefix: 'a{b' },
      { ...transport, prefix: 5 },
    ]) {
      await rejectsWith(createManager(config({ store: bad })), 'config_invalid');
    }
  });

  test('methods never throw synchronously', () => {
    return createManager(config()).then((m) => {
      for (const name of ['issue', 'verify', 'refresh', 'revoke', 'revokeAll', 'list', 'updateMetadata', 'userInfo', 'putUserInfo', 'refreshUserInfo', 'deleteUserInfo']) {
        const p = m[name](Symbol('x'), Symbol('y'), Symbol('z'));
        assert.ok(p instanceof Promise, name);
        p.catch(() => {});
      }
    });
  });
});

// Issue 11, finding 7: stored records carry a MAC, so write access to the store cannot mint tokens.
describe('a record altered in the store', () => {
  test('altered, or another session\'s copied over it: store_corrupt, nothing signed', async () => {
    const data = mapData();
    const m = await createManager(config({ store: mapStore(data) }));
    const who = user('mac');
    const t = await m.issue(who, { metadata: { device: 'phone' } });
    const other = await m.issue(who);
    const keyOf = (sid) => [...data.entries.keys()].find((k) => k.startsWith('s:') && k.endsWith(`:${sid}`));
    const key = keyOf(t.session.sid);
    const genuine = data.entries.get(key).value.slice();

    const altered = genuine.slice();
    const at = Buffer.from(altered).indexOf('phone');
    assert.ok(at > 0);
    altered[at] = 'P'.charCodeAt(0);
    for (const bytes of [altered, data.entries.get(keyOf(other.session.sid)).value.slice(), genuine.subarray(0, 40)]) {
      data.entries.get(key).value = bytes;
      await rejectsWith(m.refresh(t.refreshToken), 'store_corrupt');
      await rejectsWith(m.verify(t.accessToken, 'strict'), 'store_corrupt');
    }
    data.entries.get(key).value = genuine;
    await m.verify(t.accessToken, 'strict');
    await m.refresh(t.refreshToken);
  });
});

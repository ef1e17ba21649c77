// A misconfigured Worker answers every request with a coded 500 that names
// the variable to fix and never shows its value.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, SECRET, code, startWorker } from './harness.mjs';

const badPem = JSON.stringify([{ kid: 'old', alg: 'ES256', pem: '-----BEGIN PUBLIC KEY-----\ntoo-short\n-----END PUBLIC KEY-----' }]);
const broken = [
  ['no signing secret', { TOLLGATE_SECRET: '' }, 'TOLLGATE_SECRET is not set'],
  ['a short secret', { TOLLGATE_SECRET: 'too-short' }, 'TOLLGATE_SECRET must be at least 32 bytes'],
  ['an unknown store', { TOLLGATE_STORE: 'redis' }, 'TOLLGATE_STORE is not a store'],
  ['a store of tollgate serve', { TOLLGATE_STORE: 'memory' }, 'TOLLGATE_STORE names a store'],
  ['a SQL store of tollgate serve', { TOLLGATE_STORE: 'sqlite:/tmp/sessions.db' }, 'TOLLGATE_STORE names a store'],
  ['a malformed duration', { TOLLGATE_ACCESS_TTL: 'too-short' }, 'TOLLGATE_ACCESS_TTL is not a duration'],
  ['a renamed variable', { TOLLGATE_ACCESS_TTL_S: '60' }, 'TOLLGATE_ACCESS_TTL_S is no longer a setting: use TOLLGATE_ACCESS_TTL'],
  ['an unknown variable', { TOLLGATE_SECRETS: SECRET }, 'TOLLGATE_SECRETS is not a setting'],
  ['a setting of tollgate serve', { TOLLGATE_LISTEN: '127.0.0.1:1' }, 'TOLLGATE_LISTEN is a setting of tollgate serve only'],
  ['a short API key', { TOLLGATE_API_KEYS: 'too-short' }, 'TOLLGATE_API_KEYS has a key shorter than 16 characters'],
  ['malformed verify keys', { TOLLGATE_VERIFY_KEYS: SECRET }, 'TOLLGATE_VERIFY_KEYS is not a JSON array'],
  ['a verify key that does not load', { TOLLGATE_VERIFY_KEYS: badPem }, 'TOLLGATE_VERIFY_KEYS key #1 is not usable'],
];

for (const [what, vars, names] of broken) {
  describe(`configuration with ${what}`, () => {
    let w;
    before(async () => {
      w = await startWorker({ store: vars.TOLLGATE_STORE ?? 'durable', vars });
    });
    after(async () => w?.stop());

    test('answers 500 config_invalid naming what to fix', async () => {
      const requests = [['GET', '/healthz', {}], ['POST', '/v1/sessions', { key: API_KEY, json: { user: 'x' } }]];
      for (const [method, path, opts] of requests) {
        const r = await w.call(method, path, opts);
        assert.deepEqual([r.status, code(r)], [500, 'config_invalid'], JSON.stringify(r.body));
        assert.ok(r.body.error.message.includes(names), r.body.error.message);
        const text = JSON.stringify(r.body);
        assert.ok(!text.includes(SECRET) && !text.includes(API_KEY) && !text.includes('too-short'), text);
      }
    });
  });
}

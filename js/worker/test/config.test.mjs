// A misconfigured Worker answers every request with a coded 500 that names
// the variable to fix and never shows a secret.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API_KEY, SECRET, code, startWorker } from './harness.mjs';

const broken = [
  ['no signing secret', { TOLLGATE_SECRET: '' }, 'TOLLGATE_SECRET'],
  ['a short secret', { TOLLGATE_SECRET: 'too-short' }, 'HS256 secret'],
  ['an unknown store', { TOLLGATE_STORE: 'redis' }, 'TOLLGATE_STORE'],
  ['a bad number', { TOLLGATE_ACCESS_TTL_S: 'soon' }, 'TOLLGATE_ACCESS_TTL_S'],
  ['a short API key', { TOLLGATE_API_KEYS: 'short' }, 'API key'],
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

// tollgate/express (Express 5) in Node over real sockets: the scenario of
// adapters/scenario.mjs, each request a real HTTP request to 127.0.0.1.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { createManager } from 'tollgate';
import { tollgate } from 'tollgate/express';
import { SECRET } from './helpers.mjs';
import { expressApp } from './adapters/express-app.mjs';
import { COOKIE_APP_OPTIONS, runScenario } from './adapters/scenario.mjs';

function listen(app) {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (err) => (err ? reject(err) : resolve(server)));
  });
}

/** One HTTP request with exactly these headers (Host included), answered as the scenario reads it. */
function send(server, { method, path, headers }) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.address().port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, setCookie: res.headers['set-cookie'] ?? [], cacheControl: res.headers['cache-control'] ?? null, body: JSON.parse(text) });
        } catch (e) {
          reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('Express 5 over real sockets', async () => {
  const manager = await createManager({ secret: SECRET, kid: 'a1', issuer: 'https://app.example' });
  const servers = { bearer: await listen(expressApp(manager)), cookie: await listen(expressApp(manager, COOKIE_APP_OPTIONS)) };
  try {
    const result = await runScenario((name, req) => send(servers[name], req));
    assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.checks} checks failed`);
    assert.ok(result.checks >= 80, `ran ${result.checks} checks`);
    console.log(`express over sockets: ${result.checks} checks passed`);
  } finally {
    for (const s of Object.values(servers)) s.close();
  }
});

test('bad adapter options are refused at start with config_invalid, naming the setting', async () => {
  const manager = await createManager({ secret: SECRET });
  const cases = [
    [{ refreshCookie: 'tg_refresh' }, /refreshCookie: .*__Host-/],
    [{ refreshCookie: '__Host-a b' }, /refreshCookie: .*token/],
    [{ refreshCookiePath: '/auth' }, /refreshCookiePath: .*__Host-/],
    [{ refreshCookie: '__Secure-tg', refreshCookiePath: 'auth' }, /refreshCookiePath/],
    [{ refreshCookie: '__Secure-tg', refreshCookiePath: '/a;b' }, /refreshCookiePath/],
    [{ accessCookie: '__Host-tg_refresh' }, /accessCookie: .*two names/],
    [{ accessCookie: 'on' }, /accessCookie/],
    [{ sameSite: 'none' }, /sameSite/],
    [{ trustedProxy: 'x-forwarded-for:0' }, /trustedProxy/],
    [{ trustedProxy: 'x-real-ip' }, /trustedProxy/],
    [{ allowedOrigins: ['https://app.example/path'] }, /allowedOrigins/],
    [{ allowedOrigins: 'https://app.example' }, /allowedOrigins/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => tollgate(manager, options), (e) => e.name === 'TollgateError' && e.code === 'config_invalid' && message.test(e.message), JSON.stringify(options));
  }
  assert.throws(() => tollgate(manager).requireSession({ mode: 'lenient' }), (e) => e.code === 'config_invalid' && /mode/.test(e.message));
  assert.throws(() => tollgate(undefined), (e) => e.code === 'config_invalid');
  // The accepted forms.
  tollgate(manager, { refreshCookie: '__Secure-tg', refreshCookiePath: '/auth', accessCookie: '__Host-tg_access', sameSite: 'lax', trustedProxy: 'x-forwarded-for:2', allowedOrigins: ['https://app.example:8443', 'http://[::1]:3000'] });
  tollgate(manager, { trustedProxy: 'cf-connecting-ip' });
});

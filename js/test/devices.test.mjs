// Devices and audit from the packed tarball (issue 13, item 4): the client a session
// keeps, list marking the current session, onAudit seeing each kind, the trusted-proxy
// rule through clientIp, and the Express and Hono adapters recording IP and User-Agent.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { createManager, clientIp } from 'tollgate';
import { tollgate as expressSessions } from 'tollgate/express';
import { tollgate as honoSessions } from 'tollgate/hono';
import express from 'express';
import { Hono } from 'hono';
import { SECRET, rejectsWith, user } from './helpers.mjs';

const laptop = { ip: '2001:0DB8::7', userAgent: 'Mozilla/5.0 (X11; Linux) Firefox/140' };
const phone = { ip: '198.51.100.4', userAgent: 'Safari/17 iPhone' };

test('sessions keep their client; list marks the current one', async () => {
  const m = await createManager({ secret: SECRET });
  const u = user('dev');
  const a = await m.issue(u, { client: laptop });
  assert.equal(a.session.ip, '2001:db8::7', 'canonical text');
  assert.equal(a.session.userAgent, laptop.userAgent);
  const b = await m.issue(u);
  assert.equal(b.session.ip, null);
  assert.equal(b.session.userAgent, null);
  const a2 = await m.refresh(a.refreshToken, { client: phone });
  assert.equal(a2.session.ip, '198.51.100.4');
  const a3 = await m.refresh(a2.refreshToken);
  assert.equal(a3.session.userAgent, 'Safari/17 iPhone', 'a refresh without a client keeps the one it had');
  const listed = await m.list(u, { current: b.session.sid });
  assert.deepEqual(listed.map((s) => [s.sid, s.current]), [[a.session.sid, false], [b.session.sid, true]]);
  assert.equal(listed[0].ip, '198.51.100.4');
  assert.ok((await m.list(u)).every((s) => s.current === false));
  const long = await m.issue(u, { client: { userAgent: 'x'.repeat(1000) } });
  assert.equal(long.session.userAgent.length, 256);
  await rejectsWith(m.issue(u, { client: { ip: 'not-an-ip' } }), 'bad_request');
  await rejectsWith(m.issue(u, { client: { ip: '1.2.3.4', extra: 1 } }), 'bad_request');
  await rejectsWith(m.list(u, { current: 5 }), 'bad_request');
});

test('onAudit sees each kind, with the client and never a token', async () => {
  const events = [];
  const m = await createManager({ secret: SECRET, maxSessionsPerUser: 2, refreshGrace: '10ms', onAudit: (e) => events.push(e) });
  const u = user('audit');
  const a = await m.issue(u, { client: laptop });
  const b = await m.issue(u, { client: phone });
  const c = await m.issue(u, { client: phone }); // evicts a
  const b2 = await m.refresh(b.refreshToken, { client: laptop });
  await new Promise((r) => setTimeout(r, 30));
  await rejectsWith(m.refresh(b.refreshToken, { client: phone }), 'refresh_token_reused');
  await m.revoke(u, c.session.sid);
  const d = await m.issue(u);
  await m.issue(u);
  assert.equal(await m.revokeAll(u, { except: d.session.sid }), 1);
  assert.deepEqual(events.map((e) => [e.kind, e.sid]), [
    ['issued', a.session.sid],
    ['issued', b.session.sid],
    ['limit_evicted', a.session.sid],
    ['issued', c.session.sid],
    ['refreshed', b.session.sid],
    ['reuse_detected', b.session.sid],
    ['revoked', c.session.sid],
    ['issued', d.session.sid],
    ['issued', events[8].sid],
    ['revoked_all', d.session.sid],
  ]);
  assert.ok(events.every((e) => e.user === u && typeof e.at === 'number'));
  assert.deepEqual([events[2].ip, events[2].userAgent], ['198.51.100.4', 'Safari/17 iPhone']);
  assert.equal(events[4].ip, '2001:db8::7');
  assert.equal(events[9].count, 1);
  assert.deepEqual(Object.keys(events[9]).sort(), ['at', 'count', 'ip', 'kind', 'sid', 'user', 'userAgent']);
  const text = JSON.stringify(events);
  for (const t of [a, b, c, b2, d]) {
    assert.ok(!text.includes(t.accessToken) && !text.includes(t.refreshToken) && !text.includes(t.refreshToken.split('.')[1]));
  }
  // A throwing onAudit never fails the operation.
  const loud = await createManager({ secret: SECRET, onAudit: () => { throw new Error('sink down'); } });
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.ok((await loud.issue(user('loud'))).accessToken);
  } finally {
    console.warn = warn;
  }
  await assert.rejects(createManager({ secret: SECRET, onAudit: 'yes' }), (e) => e.code === 'config_invalid');
});

test('clientIp is the trusted-proxy rule of docs/cookies.md', async () => {
  await createManager({ secret: SECRET }); // loads the module
  const xff = { 'x-forwarded-for': '6.6.6.6, 1.1.1.1, 10.0.0.2' };
  assert.equal(clientIp('none', '203.0.113.9', xff), '203.0.113.9');
  assert.equal(clientIp('none', '::ffff:10.0.0.1', {}), '::ffff:10.0.0.1');
  assert.equal(clientIp('none', null, xff), null);
  assert.equal(clientIp('x-forwarded-for:1', '203.0.113.9', xff), '10.0.0.2');
  assert.equal(clientIp('x-forwarded-for:2', null, xff), '1.1.1.1');
  assert.equal(clientIp('x-forwarded-for:4', null, xff), null, 'never the leftmost guess');
  assert.equal(clientIp('x-forwarded-for:1', null, { 'x-forwarded-for': '[2001:DB8::1]:443' }), '2001:db8::1');
  assert.equal(clientIp('x-forwarded-for:1', null, { 'x-forwarded-for': '1.1.1.1, unknown' }), null);
  assert.equal(clientIp('cf-connecting-ip', '203.0.113.9', { 'cf-connecting-ip': '1.2.3.4:80' }), '1.2.3.4');
  assert.equal(clientIp('cf-connecting-ip', '203.0.113.9', {}), null);
  for (const bad of ['x-forwarded-for:0', 'x-real-ip', 'x-forwarded-for:256']) {
    assert.throws(() => clientIp(bad, null, {}), (e) => e.code === 'config_invalid', bad);
  }
});

function post(port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: path === '/api/sessions' ? 'GET' : 'POST', path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text), setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('Express records the socket address and User-Agent; listSessions marks the current session', async () => {
  const manager = await createManager({ secret: SECRET });
  for (const [options, headers, want] of [
    [{}, { 'x-forwarded-for': '6.6.6.6' }, '127.0.0.1'],
    [{ trustedProxy: 'x-forwarded-for:1' }, { 'x-forwarded-for': '6.6.6.6, 192.0.2.8' }, '192.0.2.8'],
  ]) {
    const auth = expressSessions(manager, options);
    const app = express();
    app.post('/login', (req, res) => auth.signIn(req, res, req.get('x-user')));
    app.post('/auth/refresh', auth.refresh);
    app.get('/api/sessions', auth.listSessions);
    const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
    try {
      const port = server.address().port;
      const u = user('ex');
      const base = { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', ...headers };
      const one = await post(port, '/login', { ...base, 'x-user': u, 'user-agent': 'Browser/1' });
      assert.equal(one.status, 200);
      assert.equal(one.body.session.ip, want);
      assert.equal(one.body.session.user_agent, 'Browser/1');
      const two = await post(port, '/login', { ...base, 'x-user': u, 'user-agent': 'Browser/2' });
      const cookie = one.setCookie[0].split(';')[0];
      const refreshed = await post(port, '/auth/refresh', { ...base, cookie, 'user-agent': 'Browser/1.1' });
      assert.equal(refreshed.status, 200);
      assert.equal(refreshed.body.session.user_agent, 'Browser/1.1');
      const list = await post(port, '/api/sessions', { ...base, authorization: `Bearer ${two.body.access_token}` });
      assert.equal(list.status, 200);
      assert.deepEqual(list.body.sessions.map((s) => [s.sid, s.current, s.ip, s.user_agent]), [
        [one.body.session.sid, false, want, 'Browser/1.1'],
        [two.body.session.sid, true, want, 'Browser/2'],
      ]);
    } finally {
      server.close();
    }
  }
  assert.throws(() => expressSessions(manager, { trustedProxy: 'x-forwarded-for:0' }), (e) => e.code === 'config_invalid');
});

test('Hono (app.request, no peer) reads the IP by trustedProxy and the User-Agent', async () => {
  const manager = await createManager({ secret: SECRET });
  const auth = honoSessions(manager, { trustedProxy: 'cf-connecting-ip' });
  const app = new Hono();
  app.post('/login', (c) => auth.signIn(c, c.req.header('x-user')));
  app.get('/api/sessions', auth.listSessions);
  const u = user('hono');
  const h = { 'sec-fetch-site': 'same-origin', 'cf-connecting-ip': '2001:db8:0:0::9', 'user-agent': 'Edge/1', 'x-user': u };
  const res = await app.request('/login', { method: 'POST', headers: h });
  const body = await res.json();
  assert.equal(res.status, 200);
  assert.deepEqual([body.session.ip, body.session.user_agent], ['2001:db8::9', 'Edge/1']);
  const none = honoSessions(manager);
  const app2 = new Hono();
  app2.post('/login', (c) => none.signIn(c, c.req.header('x-user')));
  const res2 = await app2.request('/login', { method: 'POST', headers: h });
  assert.equal((await res2.json()).session.ip, null, 'no peer and no trusted proxy: null, never the header');
  const list = await app.request('/api/sessions', { headers: { authorization: `Bearer ${body.access_token}` } });
  const sessions = (await list.json()).sessions;
  assert.deepEqual(sessions.map((s) => s.current), [true, false], 'this token\'s session, then the one app2 signed in');
});

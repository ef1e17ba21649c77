// The example apps' login page (examples/web/index.html) in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), against one running
// app: `node login-page.mjs <base URL> [label] [port]`. scripts/e2e.sh starts each
// app (Hono in Node, Hono in workerd, axum) and runs this once per app. The test's
// own two servers (another site's page, a relay) listen on `port` and `port + 1`
// of the app's host (any free ports without it).
//
// One line per check says what it saw; exits 1 when any check fails.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import { chromium } from 'playwright-core';
import { user } from '../test/helpers.mjs';

const base = new URL(process.argv[2] ?? process.env.TG_E2E_URL ?? '');
const label = process.argv[3] ?? base.host;
const ownPort = Number(process.argv[4] ?? 0);
const origin = base.origin;
const REFRESH_COOKIE = '__Host-tg_refresh';
const PASSWORD = 'demo-password';
// The flags that work here (TOOLCHAIN.md): no sandbox as root, no background traffic to a closed network.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

const results = [];
// Failure messages may quote a response: tokens never reach the output.
const redact = (text) => text.replace(/eyJ[\w-]*\.[\w-]*\.[\w-]*/g, '<access token>').replace(/\b[a-z0-9]{1,16}_[\w-]+\.[\w-]+/g, '<refresh token>');
async function check(name, body) {
  try {
    const saw = await body();
    results.push(true);
    console.log(`[${label}] ok   ${name}: ${saw}`);
  } catch (err) {
    results.push(false);
    console.log(`[${label}] FAIL ${name}: ${redact(err.message).split('\n').join(' ')}`);
  }
}

/** The page's state once its on-load refresh (or the last action) settled. */
async function settled(page, state) {
  await page.waitForFunction((s) => document.body.dataset.state === s, state, { timeout: 10_000 });
  return page.locator('#status').textContent();
}

/** Opens the page in `context` and waits for the on-load refresh to settle. */
async function open(context, state, pageOrigin = origin) {
  const page = await context.newPage();
  const restore = page.waitForResponse((r) => r.url() === `${pageOrigin}/auth/refresh`);
  await page.goto(pageOrigin);
  const res = await restore;
  return { page, status: await settled(page, state), restore: res };
}

/** Signs `name` in through the form; answers the page, its status line and the /login response. */
async function signIn(context, name, password = PASSWORD) {
  const { page } = await open(context, 'signed-out');
  const login = page.waitForResponse((r) => r.url() === `${origin}/login`);
  await page.fill('#user', name);
  await page.fill('#password', password);
  await page.click('#sign-in');
  const res = await login;
  if (res.status() === 200) await settled(page, 'signed-in');
  return { page, res, status: await page.locator('#status').textContent() };
}

/** Clicks "Who am I"; answers the /api/me response's status and body. */
async function whoami(page) {
  const me = page.waitForResponse((r) => r.url() === new URL('/api/me', page.url()).href);
  await page.click('#whoami');
  const res = await me;
  return { status: res.status(), body: await res.json() };
}

const refreshCookie = async (context) => (await context.cookies(origin)).find((c) => c.name === REFRESH_COOKIE);
// A token's last characters name it in the output without printing it.
const tail = (token) => (token ? `...${token.slice(-6)}` : 'none');
const cookieValue = (header, name) => header?.split(/;\s*/).find((p) => p.startsWith(`${name}=`))?.slice(name.length + 1);

/**
 * A relay on another port of the app's host: it forwards every request to the app
 * unchanged (Host included, so the app sees what the browser sent) and can hold
 * POST /auth/refresh requests until `hold` of them have arrived, then forward them
 * together. The browser attaches cookies when it sends, so held requests left it
 * carrying the same cookie: a race no timing can lose. Answers the Cookie header
 * and status of each refresh it forwarded.
 */
function relay() {
  const gate = { hold: 0, waiting: [], seen: [] };
  const server = createServer((req, res) => {
    const forward = () => {
      const up = httpRequest({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        if (req.url === '/auth/refresh') gate.seen.push({ sent: cookieValue(req.headers.cookie, REFRESH_COOKIE), status: answer.statusCode });
        res.writeHead(answer.statusCode, answer.rawHeaders);
        answer.pipe(res);
      });
      up.on('error', (err) => res.destroy(err));
      req.pipe(up);
    };
    if (req.method === 'POST' && req.url === '/auth/refresh' && gate.hold > 0) {
      gate.waiting.push(forward);
      if (gate.waiting.length === gate.hold) {
        gate.hold = 0;
        gate.waiting.splice(0).forEach((go) => go());
      }
      return;
    }
    forward();
  });
  return new Promise((resolve) => server.listen(ownPort && ownPort + 1, base.hostname, () => resolve({ server, gate, origin: `http://${base.host.replace(/:\d+$/, '')}:${server.address().port}` })));
}

/** A page of another origin that posts a form to the app as soon as it loads. */
function attackerServer() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://attacker');
    const action = `${origin}${url.searchParams.get('path')}`;
    // text/plain lets a form send a body that parses as JSON: {"user":..,"password":..,"pad":"="}
    const json = url.searchParams.get('json');
    const field = json ? `<input name='${json.slice(0, -1)},"pad":"' value='"}'>` : '<input name="x" value="1">';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><form method="post" action="${action}"${json ? ' enctype="text/plain"' : ''}>${field}</form>
<script>document.forms[0].submit()</script>`);
  });
  return new Promise((resolve) => server.listen(ownPort, '127.0.0.1', () => resolve(server)));
}

/** The attacker's page at `attackerOrigin` posts to `path`; answers what the app answered and what Chromium sent. */
async function crossOriginPost(context, attackerOrigin, path, json) {
  const page = await context.newPage();
  const answer = page.waitForResponse((r) => r.url() === `${origin}${path}` && r.request().method() === 'POST');
  const query = new URLSearchParams({ path, ...(json ? { json: JSON.stringify(json) } : {}) });
  await page.goto(`${attackerOrigin}/?${query}`);
  const res = await answer;
  const sent = await res.request().allHeaders();
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const setCookie = await res.headerValue('set-cookie');
  await page.close();
  return { status: res.status(), code: body?.error?.code ?? null, body, sent, setCookie };
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
const attacker = await attackerServer();
const attackerPort = attacker.address().port;
console.log(`[${label}] ${origin}, Chromium ${browser.version()}`);

try {
  const alice = user('alice');
  const tabs = await browser.newContext();

  await check('sign in through the page', async () => {
    const wrong = await signIn(tabs, alice, 'wrong-password');
    assert.equal(wrong.res.status(), 401);
    assert.equal((await wrong.res.json()).error.code, 'unauthorized');
    assert.equal(await refreshCookie(tabs), undefined, 'a refused sign-in set a cookie');
    await wrong.page.close();
    const { page, res, status } = await signIn(tabs, alice);
    assert.equal(res.status(), 200, `sign-in answered ${res.status()}`);
    const body = await res.json();
    assert.equal(body.session.user, alice);
    assert.equal(typeof body.access_token, 'string');
    assert.equal(status, `signed in as ${alice}`);
    const me = await whoami(page);
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { user: alice, sid: body.session.sid });
    const shown = await page.locator('#me').textContent();
    await page.reload();
    const restored = await settled(page, 'signed-in');
    assert.equal(restored, `signed in as ${alice}`);
    const after = await whoami(page);
    assert.deepEqual(after.body, { user: alice, sid: body.session.sid });
    await page.close();
    return `wrong password -> 401 unauthorized, no cookie; demo-password -> 200, status "${status}", Who am I -> "${shown}"; `
      + 'after a reload (no token in memory) the on-load refresh restored the same session';
  });

  await check('cookie flags', async () => {
    const { page } = await open(tabs, 'signed-in');
    const set = await page.evaluate(async () => {
      const r = await fetch('/auth/refresh', { method: 'POST' });
      return r.status;
    });
    assert.equal(set, 200);
    const cookies = await tabs.cookies(origin);
    assert.deepEqual(cookies.map((c) => c.name), [REFRESH_COOKIE], 'the only cookie is the refresh cookie (access cookie off)');
    const c = cookies[0];
    assert.equal(c.httpOnly, true, 'HttpOnly');
    assert.equal(c.secure, true, 'Secure');
    assert.equal(c.sameSite, 'Strict', 'SameSite');
    assert.equal(c.path, '/', 'Path');
    assert.equal(c.domain, base.hostname, 'host-only, no Domain');
    const lifetime = Math.round(c.expires - Date.now() / 1000);
    assert.ok(lifetime > 0, 'a persistent cookie (Max-Age)');
    const script = await page.evaluate(() => document.cookie);
    assert.equal(script, '', 'document.cookie shows nothing');
    // The header itself, without the token: attributes in the documented order.
    const login = await signIn(await browser.newContext(), user('flags'));
    const header = await login.res.headerValue('set-cookie');
    const attributes = header.replace(/^__Host-tg_refresh=[^;]+/, `${REFRESH_COOKIE}=<token>`);
    assert.match(attributes, /^__Host-tg_refresh=<token>; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/);
    assert.equal(await login.res.headerValue('cache-control'), 'no-store');
    await login.page.context().close();
    await page.close();
    return `context.cookies(): only ${c.name}, httpOnly ${c.httpOnly}, secure ${c.secure}, sameSite ${c.sameSite}, path ${c.path}, `
      + `domain ${c.domain} (host-only), expires in ${lifetime} s; document.cookie = ${JSON.stringify(script)}; Set-Cookie: ${attributes}; Cache-Control: no-store`;
  });

  await check('two tabs refresh at the same moment, both stay signed in', async () => {
    // The tabs load the page through the relay: another port of the same host, so the same cookie jar entry.
    const { server, gate, origin: relayed } = await relay();
    try {
      const tabA = (await open(tabs, 'signed-in', relayed)).page;
      const tabB = (await open(tabs, 'signed-in', relayed)).page;
      const before = (await refreshCookie(tabs)).value;
      gate.seen.length = 0;
      gate.hold = 2;
      const bodies = [];
      const watch = (page) => page.waitForResponse((r) => r.url() === `${relayed}/auth/refresh`).then(async (r) => {
        bodies.push({ set: cookieValue(await r.headerValue('set-cookie'), REFRESH_COOKIE), generation: (await r.json()).session?.generation });
      });
      const watching = [watch(tabA), watch(tabB)];
      // Each tab calls its page's refresh(); the relay forwards both once both have arrived.
      const answers = await Promise.all([tabA, tabB].map((page) => page.evaluate(() => window.tollgateDemo.refresh().then((r) => ({ status: r.status, code: r.code })))));
      await Promise.all(watching);
      const [a, b] = bodies;
      assert.deepEqual(gate.seen.map((x) => x.sent), [before, before], 'both tabs sent the cookie of the jar');
      assert.deepEqual(answers.map((x) => x.status), [200, 200], `answers: ${JSON.stringify(answers)}`);
      assert.ok(a.set && b.set, 'both answers set the refresh cookie (neither cleared it)');
      assert.equal(a.set, b.set, 'the refresh that lost the race got the same successor (docs/cookies.md, Refresh)');
      const stateA = await settled(tabA, 'signed-in');
      const stateB = await settled(tabB, 'signed-in');
      const meA = await whoami(tabA);
      const meB = await whoami(tabB);
      assert.equal(meA.status, 200, JSON.stringify(meA.body));
      assert.equal(meB.status, 200, JSON.stringify(meB.body));
      assert.equal(meA.body.user, alice);
      assert.deepEqual(meB.body, meA.body);
      const jar = (await refreshCookie(tabs)).value;
      assert.ok(jar === a.set || jar === b.set);
      const next = await tabA.evaluate(() => window.tollgateDemo.refresh().then((r) => r.status));
      assert.equal(next, 200, 'the cookie left in the jar refreshes again');
      await tabA.close();
      await tabB.close();
      return `both tabs sent cookie ${tail(before)} at once (a relay held each request until both had left the browser); answers ${answers[0].status} and ${answers[1].status}, `
        + `successors ${tail(a.set)} and ${tail(b.set)} (${a.set === b.set ? 'the same' : 'different'}; generations ${a.generation} and ${b.generation}); status lines "${stateA}", "${stateB}"; `
        + `then /api/me -> ${meA.status} and ${meB.status} (${meA.body.user}, one session ${meA.body.sid}); the jar's cookie refreshes again -> ${next}`;
    } finally {
      server.close();
    }
  });

  await check('my sessions lists both devices; sign out everywhere in one tab signs the other out on its next request', async () => {
    const tabA = (await open(tabs, 'signed-in')).page;
    const tabB = (await open(tabs, 'signed-in')).page;
    // Another device of the same user, so "everywhere" covers more than this browser.
    const device = await browser.newContext();
    const other = await signIn(device, alice);
    assert.equal(other.res.status(), 200);
    const theirs = (await other.res.json()).session.sid;
    const mine = (await whoami(tabA)).body.sid;
    // The sessions list: this browser's session and the other device's.
    const listed = tabA.waitForResponse((r) => r.url() === `${origin}/api/sessions`);
    await tabA.click('#list-sessions');
    const list = await (await listed).json();
    const sids = list.sessions.map((x) => x.sid).sort();
    assert.deepEqual(sids, [mine, theirs].sort(), 'GET /api/sessions lists both sessions of the user');
    await tabA.waitForFunction(() => document.querySelectorAll('#sessions li').length === 2);
    const fields = Object.keys(list.sessions[0]).join(',');
    const out = tabA.waitForResponse((r) => r.url() === `${origin}/auth/sign-out-everywhere`);
    await tabA.click('#sign-out-everywhere');
    const res = await out;
    assert.equal(res.status(), 200, await res.text());
    const { revoked } = await res.json();
    const statusA = await settled(tabA, 'signed-out');
    assert.equal(await refreshCookie(tabs), undefined, 'the refresh cookie is cleared');
    // Tab B still holds its access token in memory: its next request is refused.
    const me = await whoami(tabB);
    assert.equal(me.status, 401);
    assert.equal(me.body.error.code, 'session_revoked');
    const statusB = await settled(tabB, 'signed-out');
    const deviceMe = await whoami(other.page);
    assert.equal(deviceMe.body.error?.code, 'session_revoked');
    const deviceRefresh = await other.page.evaluate(() => window.tollgateDemo.refresh().then((r) => `${r.status} ${r.code}`));
    assert.match(deviceRefresh, /^401 session_revoked$/);
    assert.equal(await refreshCookie(device), undefined, "the other device's dead refresh cookie is cleared");
    await device.close();
    return `My sessions listed 2 (fields ${fields}); tab A: 200 {"revoked":${revoked}}, "${statusA}", cookie cleared; tab B's next /api/me -> ${me.status} ${me.body.error.code}, `
      + `page shows "${statusB}"; another browser of the user: /api/me -> ${deviceMe.status} ${deviceMe.body.error.code}, refresh -> ${deviceRefresh}, cookie cleared`;
  });

  await check('sign out ends this browser\'s session only', async () => {
    const bob = user('bob');
    const laptop = await browser.newContext();
    const phone = await browser.newContext();
    const here = await signIn(laptop, bob);
    const there = await signIn(phone, bob);
    const kept = await refreshCookie(laptop);
    const out = here.page.waitForResponse((r) => r.url() === `${origin}/auth/sign-out`);
    await here.page.click('#sign-out');
    const res = await out;
    assert.equal(res.status(), 200);
    const body = await res.json();
    assert.deepEqual(body, { signed_out: true });
    const status = await settled(here.page, 'signed-out');
    assert.equal(await refreshCookie(laptop), undefined, 'the refresh cookie is cleared');
    // The session is revoked on the server, not only forgotten: its old cookie, put back, no longer refreshes.
    await laptop.addCookies([kept]);
    const replay = here.page.waitForResponse((r) => r.url() === `${origin}/auth/refresh`);
    await here.page.reload();
    const replayed = await replay;
    const replayCode = (await replayed.json()).error?.code;
    assert.equal(replayed.status(), 401);
    assert.equal(replayCode, 'session_revoked');
    const reloaded = await settled(here.page, 'signed-out');
    const me = await whoami(there.page);
    assert.equal(me.status, 200);
    assert.equal(me.body.user, bob);
    await laptop.close();
    await phone.close();
    return `200 ${JSON.stringify(body)}, "${status}", cookie cleared; its old cookie put back -> refresh ${replayed.status()} ${replayCode}, page "${reloaded}"; the user's other browser: /api/me -> ${me.status} ${me.body.user}`;
  });

  await check('a cross-site or cross-origin form POST is refused, the user stays signed in', async () => {
    const victim = user('victim');
    const context = await browser.newContext();
    const { page, res } = await signIn(context, victim);
    assert.equal(res.status(), 200);
    const sid = (await res.json()).session.sid;
    const cookieBefore = (await refreshCookie(context)).value;
    const otherSite = `http://${base.hostname === 'localhost' ? '127.0.0.1' : 'localhost'}:${attackerPort}`;
    const sameSite = `http://${base.hostname}:${attackerPort}`; // another port: same site, another origin
    const mallory = user('mallory');
    const cases = [
      [otherSite, '/login', { user: mallory, password: PASSWORD }],
      [sameSite, '/login', { user: mallory, password: PASSWORD }],
      [otherSite, '/auth/sign-out-everywhere'],
      [sameSite, '/auth/sign-out-everywhere'],
      [sameSite, '/auth/sign-out'],
      [sameSite, '/auth/refresh'],
    ];
    const seen = [];
    for (const [from, path, json] of cases) {
      const r = await crossOriginPost(context, from, path, json);
      const cookieSent = cookieValue(r.sent.cookie, REFRESH_COOKIE) !== undefined;
      seen.push(`${from} -> ${path}: ${r.status} ${r.code} (Sec-Fetch-Site ${r.sent['sec-fetch-site']}, cookie ${cookieSent ? 'sent' : 'not sent'})`);
      assert.equal(r.status, 403, `${from} ${path} answered ${r.status} ${r.code ?? '(no error code)'}`);
      assert.equal(r.code, 'forbidden');
      assert.equal(r.setCookie, null, `${path} set a cookie`);
    }
    assert.equal((await refreshCookie(context)).value, cookieBefore, 'the refresh cookie is unchanged');
    const me = await whoami(page);
    assert.deepEqual(me.body, { user: victim, sid });
    const again = await page.evaluate(() => window.tollgateDemo.refresh().then((r) => `${r.status} ${r.body.session?.user}`));
    assert.equal(again, `200 ${victim}`);
    // Control: the same text/plain form from the app's own page. Accepted (200), the 403s above came from the
    // origin check; an app that reads only application/json refuses it itself (415), after the origin check.
    const control = await browser.newContext();
    const own = (await open(control, 'signed-out')).page;
    const answer = own.waitForResponse((r) => r.url() === `${origin}/login`);
    await own.evaluate(({ name, password }) => {
      const form = Object.assign(document.createElement('form'), { method: 'post', action: '/login', enctype: 'text/plain' });
      form.append(Object.assign(document.createElement('input'), { name: `{"user":"${name}","password":"${password}","pad":"`, value: '"}' }));
      document.body.append(form);
      form.submit();
    }, { name: mallory, password: PASSWORD });
    const controlRes = await answer;
    assert.ok([200, 415].includes(controlRes.status()), `the same form from the app itself answered ${controlRes.status()}`);
    await control.close();
    await context.close();
    return `${seen.join('; ')}; afterwards the victim's /api/me -> ${me.status} ${me.body.user} (same session), refresh -> ${again}; `
      + `control: the same text/plain form posted from the app's own page -> ${controlRes.status()}${controlRes.status() === 200 ? ' (signed in)' : ' (the app reads only JSON)'}`;
  });
} finally {
  await browser.close();
  attacker.close();
}

const failed = results.filter((ok) => !ok).length;
console.log(`[${label}] ${results.length - failed} of ${results.length} checks passed`);
process.exit(failed ? 1 : 0);

// One scenario for every framework adapter in every runtime (docs/cookies.md,
// request by request). Portable: no Node modules, so workerd, Deno, Bun and the
// Edge emulator run it as they are. `send(app, { method, path, headers })`
// answers `{ status, setCookie: string[], cacheControl, body }`; app 'bearer'
// has the default options, app 'cookie' has accessCookie '__Host-tg_access' and
// sameSite 'lax'. Answers `{ checks, failures }`; the test asserts no failures.

export const COOKIE_APP_OPTIONS = { accessCookie: '__Host-tg_access', sameSite: 'lax', allowedOrigins: ['https://partner.example'] };
const HOST = 'app.example';
const SAME = { 'sec-fetch-site': 'same-origin', host: HOST };
const REFRESH_SET = /^__Host-tg_refresh=(tgr[^;\s]+); Path=\/; Max-Age=(\d+); HttpOnly; Secure; SameSite=Strict$/;
const REFRESH_VALUE = /^__Host-tg_refresh=(tgr[^;\s]+); /;
const DEAD = ['token_invalid', 'session_not_found', 'session_revoked', 'session_expired', 'refresh_token_reused'];
const REFRESH_CLEAR = '__Host-tg_refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict';

export async function runScenario(send) {
  let checks = 0;
  const failures = [];
  const check = (ok, what, seen) => {
    checks += 1;
    if (!ok) failures.push(`${what}${seen === undefined ? '' : `: saw ${JSON.stringify(seen)}`}`);
  };
  const refused = (res, status, code, what) => {
    check(res.status === status && res.body?.error?.code === code, `${what}: ${status} ${code}`, [res.status, res.body]);
    check(typeof res.body?.error?.message === 'string' && !/eyJ|tgr_/.test(res.body.error.message), `${what}: a message quoting no token`, res.body);
    check(res.cacheControl === 'no-store', `${what}: Cache-Control no-store`, res.cacheControl);
  };
  const unchanged = (res, what) => check(res.setCookie.length === 0, `${what}: cookies unchanged`, res.setCookie);
  const refreshCookie = (res) => REFRESH_VALUE.exec(res.setCookie.find((c) => c.startsWith('__Host-tg_refresh=')) ?? '')?.[1] ?? null;
  const post = (path, headers) => ({ method: 'POST', path, headers: { ...SAME, ...headers } });
  const get = (path, headers) => ({ method: 'GET', path, headers: { host: HOST, ...headers } });
  const bearer = (token) => ({ authorization: `Bearer ${token}` });
  const cookie = (value) => ({ cookie: `other=1; __Host-tg_refresh=${value}` });

  // Sign-in: body, cookie flags, no-store.
  const login = await send('bearer', post('/login', { 'x-user': 'alice', 'x-device': 'laptop' }));
  check(login.status === 200, 'sign-in answers 200', [login.status, login.body]);
  check(typeof login.body.access_token === 'string' && login.body.session?.user === 'alice' && login.body.session.generation === 0, 'sign-in body: access_token and session', login.body);
  check(!('refresh_token' in login.body) && !JSON.stringify(login.body).includes('tgr_'), 'the refresh token is never in a body', login.body);
  check(login.setCookie.length === 1 && REFRESH_SET.test(login.setCookie[0]), 'sign-in sets the __Host- refresh cookie: Path=/, Max-Age, HttpOnly, Secure, SameSite=Strict', login.setCookie);
  const maxAge = Number(REFRESH_SET.exec(login.setCookie[0] ?? '')?.[2]);
  check(maxAge > 13 * 86400 && maxAge <= 14 * 86400, 'Max-Age runs to the idle expiry (14 days)', maxAge);
  check(login.cacheControl === 'no-store', 'sign-in: Cache-Control no-store', login.cacheControl);
  const access = login.body.access_token;
  let refresh = refreshCookie(login);

  // Login CSRF.
  const crossSite = await send('bearer', post('/login', { 'x-user': 'mallory', 'sec-fetch-site': 'cross-site' }));
  refused(crossSite, 403, 'forbidden', 'sign-in from another site');
  unchanged(crossSite, 'sign-in from another site');
  const sameSite = await send('bearer', post('/login', { 'x-user': 'mallory', 'sec-fetch-site': 'same-site' }));
  refused(sameSite, 403, 'forbidden', 'sign-in from a sibling subdomain (same-site)');
  const evilOrigin = await send('bearer', { method: 'POST', path: '/login', headers: { host: HOST, origin: 'https://evil.example', 'x-user': 'mallory' } });
  refused(evilOrigin, 403, 'forbidden', 'sign-in with a foreign Origin and no Sec-Fetch-Site');
  const nullOrigin = await send('bearer', { method: 'POST', path: '/login', headers: { host: HOST, origin: 'null', 'x-user': 'mallory' } });
  refused(nullOrigin, 403, 'forbidden', "sign-in with Origin 'null'");
  const ownOrigin = await send('bearer', { method: 'POST', path: '/login', headers: { host: HOST, origin: 'https://APP.example', 'x-user': 'carol' } });
  check(ownOrigin.status === 200, 'sign-in with its own Origin (host compared case-insensitively) and no Sec-Fetch-Site', [ownOrigin.status, ownOrigin.body]);
  const noHeaders = await send('bearer', { method: 'POST', path: '/login', headers: { host: HOST, 'x-user': 'carol' } });
  check(noHeaders.status === 200, 'sign-in without Origin or Sec-Fetch-Site (not a browser)', noHeaders.status);
  const badUser = await send('bearer', post('/login', { 'x-user': '' }));
  refused(badUser, 400, 'bad_request', 'sign-in of an empty user id');
  unchanged(badUser, 'a refused sign-in');

  // Verifying: strict, stateless, and every kind of missing or bad credential.
  const me = await send('bearer', get('/me', bearer(access)));
  check(me.status === 200 && me.body.sub === 'alice' && me.body.role === 'reader' && me.body.device === 'laptop', 'strict route: claims and session metadata', me.body);
  unchanged(me, 'verification');
  const fast = await send('bearer', get('/fast', bearer(access)));
  check(fast.status === 200 && fast.body.sub === 'alice' && fast.body.session === null, 'stateless route: claims, no session', fast.body);
  refused(await send('bearer', get('/me')), 401, 'unauthorized', 'no credentials');
  refused(await send('bearer', get('/me', { authorization: `Basic ${access}` })), 401, 'unauthorized', 'another scheme than Bearer');
  refused(await send('bearer', get('/me', bearer('not.a.token'))), 401, 'token_invalid', 'a forged token');
  refused(await send('bearer', get('/me', bearer(`${access} ${access}`))), 401, 'unauthorized', 'two words after Bearer: a malformed header, not a bad token');
  refused(await send('bearer', get('/me', { authorization: 'Bearer' })), 401, 'unauthorized', 'Bearer and no token');
  const spaced = await send('bearer', get('/me', { authorization: `bEaReR \t ${access}\t ` }));
  check(spaced.status === 200 && spaced.body.sub === 'alice', 'the scheme in any case, spaces and tabs around the token', [spaced.status, spaced.body]);
  refused(await send('bearer', get('/me', cookie(refresh))), 401, 'unauthorized', 'the refresh cookie never authenticates a route');
  refused(await send('bearer', get('/unguarded', bearer(access))), 500, 'internal', 'a route without requireSession()');

  // Refresh: rotation, the race, missing cookie, CSRF.
  const r1 = await send('bearer', post('/auth/refresh', cookie(refresh)));
  const next = refreshCookie(r1);
  check(r1.status === 200 && r1.body.session?.generation === 1 && typeof r1.body.access_token === 'string', 'refresh answers the next tokens', [r1.status, r1.body]);
  check(next !== null && next !== refresh && r1.setCookie.length === 1, 'refresh sets the successor cookie', r1.setCookie);
  check(r1.cacheControl === 'no-store', 'refresh: Cache-Control no-store', r1.cacheControl);
  const [ra, rb] = await Promise.all([send('bearer', post('/auth/refresh', cookie(next))), send('bearer', post('/auth/refresh', cookie(next)))]);
  check(ra.status === 200 && rb.status === 200, 'two tabs refreshing at once both answer 200', [ra.status, rb.status, ra.body, rb.body]);
  check(refreshCookie(ra) !== null && refreshCookie(ra) === refreshCookie(rb), 'the race loser gets the same successor cookie, never a clearing one', [ra.setCookie, rb.setCookie]);
  refresh = refreshCookie(ra);
  const late = await send('bearer', post('/auth/refresh', cookie(next)));
  check(late.status === 200 && refreshCookie(late) === refresh, 'a retry within the grace window: the same successor again', [late.status, late.setCookie]);
  const none = await send('bearer', post('/auth/refresh'));
  refused(none, 401, 'unauthorized', 'refresh without a refresh cookie');
  unchanged(none, 'refresh without a refresh cookie');
  const emptyCookie = await send('bearer', post('/auth/refresh', { cookie: '__Host-tg_refresh=' }));
  refused(emptyCookie, 401, 'unauthorized', 'an empty cookie value is no cookie');
  const crossRefresh = await send('bearer', post('/auth/refresh', { ...cookie(refresh), 'sec-fetch-site': 'cross-site' }));
  refused(crossRefresh, 403, 'forbidden', 'refresh from another site');
  unchanged(crossRefresh, 'refresh from another site');
  const garbage = await send('bearer', post('/auth/refresh', cookie('tgr_garbage')));
  refused(garbage, 401, 'token_invalid', 'refresh with a malformed cookie');
  check(garbage.setCookie.length === 1 && garbage.setCookie[0] === REFRESH_CLEAR, 'a dead refresh cookie is cleared (same name, Path, flags, Max-Age=0)', garbage.setCookie);

  // Sign-out: by the access token; the session is gone for strict routes and for refresh.
  const latest = ra.body.access_token;
  const out = await send('bearer', post('/auth/sign-out', bearer(latest)));
  check(out.status === 200 && out.body.signed_out === true, 'sign-out answers signed_out', [out.status, out.body]);
  check(out.setCookie.length === 1 && out.setCookie[0] === REFRESH_CLEAR, 'sign-out clears the refresh cookie', out.setCookie);
  refused(await send('bearer', get('/me', bearer(latest))), 401, 'session_revoked', 'strict route after sign-out');
  const stillStateless = await send('bearer', get('/fast', bearer(latest)));
  check(stillStateless.status === 200, 'a stateless route still accepts the signed-out token until it expires', stillStateless.status);
  const dead = await send('bearer', post('/auth/refresh', cookie(refresh)));
  refused(dead, 401, 'session_revoked', 'refresh of a signed-out session');
  check(dead.setCookie[0] === REFRESH_CLEAR, 'refresh of a signed-out session clears the cookie', dead.setCookie);
  const again = await send('bearer', post('/auth/sign-out', cookie(refresh)));
  check(again.status === 200 && again.body.signed_out === true && again.setCookie[0] === REFRESH_CLEAR, 'sign-out when already signed out: the same answer', [again.status, again.setCookie]);
  refused(await send('bearer', post('/auth/sign-out', { ...bearer(latest), 'sec-fetch-site': 'cross-site' })), 403, 'forbidden', 'sign-out from another site');

  // Sign-out by the refresh cookie alone (a page that lost its access token).
  const dave = await send('bearer', post('/login', { 'x-user': 'dave' }));
  const daveOut = await send('bearer', post('/auth/sign-out', cookie(refreshCookie(dave))));
  check(daveOut.status === 200 && daveOut.setCookie[0] === REFRESH_CLEAR, 'sign-out by the refresh cookie', [daveOut.status, daveOut.body]);
  refused(await send('bearer', get('/me', bearer(dave.body.access_token))), 401, 'session_revoked', 'the cookie-named session is revoked');

  // Sign-out everywhere: every session of the user, other devices fail next.
  const bob1 = await send('bearer', post('/login', { 'x-user': 'bob', 'x-device': 'phone' }));
  const bob2 = await send('bearer', post('/login', { 'x-user': 'bob', 'x-device': 'tablet' }));
  refused(await send('bearer', post('/auth/sign-out-everywhere')), 401, 'unauthorized', 'sign-out everywhere without an access token');
  const all = await send('bearer', post('/auth/sign-out-everywhere', bearer(bob1.body.access_token)));
  check(all.status === 200 && all.body.revoked === 2, 'sign-out everywhere revokes both of bob’s sessions', [all.status, all.body]);
  check(all.setCookie[0] === REFRESH_CLEAR, 'sign-out everywhere clears the cookies', all.setCookie);
  refused(await send('bearer', get('/me', bearer(bob2.body.access_token))), 401, 'session_revoked', 'the other device’s next strict request');
  const bob2Refresh = await send('bearer', post('/auth/refresh', cookie(refreshCookie(bob2))));
  check(bob2Refresh.status === 401 && DEAD.includes(bob2Refresh.body?.error?.code), 'the other device’s next refresh: 401, its session is dead', [bob2Refresh.status, bob2Refresh.body]);
  check(bob2Refresh.setCookie[0] === REFRESH_CLEAR, 'and its cookie is cleared', bob2Refresh.setCookie);

  // The access token in its own cookie, SameSite=Lax.
  const c = await send('cookie', post('/login', { 'x-user': 'erin' }));
  check(c.status === 200 && !('access_token' in c.body) && typeof c.body.access_expires_at === 'number', 'access cookie: the token is left out of the body', c.body);
  const accessSet = c.setCookie.find((s) => s.startsWith('__Host-tg_access='));
  check(c.setCookie.length === 2 && /; SameSite=Lax$/.test(c.setCookie[0]) && /^__Host-tg_access=eyJ[^;]+; Path=\/; Max-Age=(\d+); HttpOnly; Secure; SameSite=Lax$/.test(accessSet ?? ''), 'both cookies, SameSite=Lax', c.setCookie);
  const accessMaxAge = Number(/Max-Age=(\d+)/.exec(accessSet ?? '')?.[1]);
  check(accessMaxAge > 800 && accessMaxAge <= 900, 'the access cookie lives until the token expires (15 min)', accessMaxAge);
  const accessToken = /^__Host-tg_access=([^;]+)/.exec(accessSet ?? '')?.[1];
  const jar = { cookie: `__Host-tg_access=${accessToken}; __Host-tg_refresh=${refreshCookie(c)}` };
  const cm = await send('cookie', get('/me', { ...jar, 'sec-fetch-site': 'cross-site' }));
  check(cm.status === 200 && cm.body.sub === 'erin', 'a GET authenticated by the access cookie (safe method: no CSRF check)', [cm.status, cm.body]);
  refused(await send('cookie', { method: 'POST', path: '/me', headers: { host: HOST, ...jar, 'sec-fetch-site': 'cross-site' } }), 403, 'forbidden', 'a cookie-authenticated POST from another site');
  const samePost = await send('cookie', post('/me', jar));
  check(samePost.status === 200 && samePost.body.changed === true, 'a cookie-authenticated POST from the same origin', [samePost.status, samePost.body]);
  const partner = await send('cookie', { method: 'POST', path: '/me', headers: { host: HOST, ...jar, origin: 'https://partner.example', 'sec-fetch-site': 'cross-site' } });
  check(partner.status === 200, 'a POST from an origin in allowedOrigins', [partner.status, partner.body]);
  const bearerPost = await send('cookie', { method: 'POST', path: '/me', headers: { host: HOST, authorization: `Bearer ${accessToken}`, 'sec-fetch-site': 'cross-site' } });
  check(bearerPost.status === 200, 'a bearer-authenticated POST is not CSRF-checked (browsers never add the header)', [bearerPost.status, bearerPost.body]);
  const cr = await send('cookie', post('/auth/refresh', jar));
  check(cr.status === 200 && cr.setCookie.length === 2 && !('access_token' in cr.body), 'refresh with an access cookie sets both cookies', [cr.status, cr.setCookie]);
  const cOut = await send('cookie', post('/auth/sign-out', jar));
  check(
    cOut.status === 200 && cOut.setCookie.includes('__Host-tg_access=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax') && cOut.setCookie.includes('__Host-tg_refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax'),
    'sign-out clears both cookies',
    cOut.setCookie,
  );

  return { checks, failures };
}

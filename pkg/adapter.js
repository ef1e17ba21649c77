// The behaviour of every JavaScript framework adapter (tollgate/hono,
// tollgate/express), written once: options, cookies, the CSRF decision, and the
// handlers of docs/cookies.md. An adapter only translates its framework's
// request into `{ method, header(name), host }` and a Reply into its response.
import { tollgateError } from './errors.js';
import { clientIp } from './tollgate.js';

/** @typedef {{ status: number, body: unknown, cookies: string[], noStore: boolean }} Reply */

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/; // printable, no ';' (RFC 6265 path-value)
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$/i;
// A refresh that fails with one of these will never succeed: its cookies go.
const DEAD_REFRESH = new Set(['token_invalid', 'session_not_found', 'session_revoked', 'session_expired', 'refresh_token_reused']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const invalid = (setting, what) => tollgateError('config_invalid', 500, `${setting}: ${what}`);

function cookieName(setting, name) {
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) throw invalid(setting, 'a cookie name is a token (letters, digits, !#$%&\'*+-.^_`|~)');
  if (!name.startsWith('__Host-') && !name.startsWith('__Secure-')) throw invalid(setting, 'the cookie name must start with __Host- or __Secure- (browsers then require Secure)');
  return name;
}

/** The adapter options of docs/cookies.md, checked once; a bad one is `config_invalid` naming it. */
export function adapterOptions(options = {}) {
  const refreshCookie = cookieName('refreshCookie', options.refreshCookie ?? '__Host-tg_refresh');
  const refreshCookiePath = options.refreshCookiePath ?? '/';
  if (typeof refreshCookiePath !== 'string' || !COOKIE_PATH.test(refreshCookiePath)) throw invalid('refreshCookiePath', "a path starts with '/' and has no ';' or spaces");
  if (refreshCookie.startsWith('__Host-') && refreshCookiePath !== '/') throw invalid('refreshCookiePath', "a __Host- cookie must have Path=/: use a __Secure- name to scope the cookie to a path");
  const access = options.accessCookie ?? 'off';
  const accessCookie = access === 'off' ? null : cookieName('accessCookie', access);
  if (accessCookie === refreshCookie) throw invalid('accessCookie', 'the access and refresh cookies need two names');
  const sameSite = options.sameSite ?? 'strict';
  if (sameSite !== 'strict' && sameSite !== 'lax') throw invalid('sameSite', "'strict' or 'lax'");
  const trustedProxy = options.trustedProxy ?? 'none';
  if (typeof trustedProxy !== 'string') throw invalid('trustedProxy', "'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'");
  clientIp(trustedProxy, null, {}); // the Rust rule checks the setting: config_invalid when it is none of the three
  const origins = options.allowedOrigins ?? [];
  if (!Array.isArray(origins)) throw invalid('allowedOrigins', 'a list of origins');
  for (const o of origins) {
    if (typeof o !== 'string' || !ORIGIN.test(o)) throw invalid('allowedOrigins', 'each origin is scheme://host[:port], no path');
  }
  return { refreshCookie, refreshCookiePath, accessCookie, sameSite, trustedProxy, allowedOrigins: new Set(origins) };
}

/** The first non-empty value of cookie `name` in a Cookie header, or null. */
export function readCookie(header, name) {
  if (!header) return null;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
    const value = pair.slice(eq + 1).trim();
    return value === '' ? null : value;
  }
  return null;
}

function setCookie(opts, name, path, value, maxAge) {
  const sameSite = opts.sameSite === 'lax' ? 'Lax' : 'Strict';
  return `${name}=${value}; Path=${path}; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=${sameSite}`;
}

const secondsUntil = (ms, now) => Math.max(1, Math.floor((ms - now) / 1000));

function tokenCookies(opts, tokens, now = Date.now()) {
  const s = tokens.session;
  const cookies = [setCookie(opts, opts.refreshCookie, opts.refreshCookiePath, tokens.refreshToken, secondsUntil(Math.min(s.idleExpiresAt, s.absoluteExpiresAt), now))];
  if (opts.accessCookie) cookies.push(setCookie(opts, opts.accessCookie, '/', tokens.accessToken, secondsUntil(tokens.accessExpiresAt, now)));
  return cookies;
}

function clearCookies(opts) {
  const cookies = [setCookie(opts, opts.refreshCookie, opts.refreshCookiePath, '', 0)];
  if (opts.accessCookie) cookies.push(setCookie(opts, opts.accessCookie, '/', '', 0));
  return cookies;
}

/** The session as the HTTP API writes it (snake_case, unix ms). */
export function sessionJson(s) {
  return {
    sid: s.sid, user: s.user, created_at: s.createdAt, last_seen: s.lastSeen, idle_expires_at: s.idleExpiresAt,
    absolute_expires_at: s.absoluteExpiresAt, generation: s.generation, metadata: s.metadata,
    ip: s.ip ?? null, user_agent: s.userAgent ?? null, ...(s.current === undefined ? {} : { current: s.current }),
  };
}

/**
 * The client of a request (docs/cookies.md, "Client IP" and "Devices"): its IP by the
 * trusted-proxy rule, written once in Rust (`clientIp`), and its User-Agent.
 * `req.peer` is the socket's remote address when the runtime gives one.
 */
export function clientOf(opts, req) {
  const headers = { 'x-forwarded-for': req.header('x-forwarded-for') ?? undefined, 'cf-connecting-ip': req.header('cf-connecting-ip') ?? undefined };
  return { ip: clientIp(opts.trustedProxy, req.peer ?? null, headers), userAgent: req.header('user-agent') ?? null };
}

function tokensReply(opts, tokens) {
  const body = { access_token: tokens.accessToken, access_expires_at: tokens.accessExpiresAt, session: sessionJson(tokens.session) };
  if (opts.accessCookie) delete body.access_token;
  return { status: 200, body, cookies: tokenCookies(opts, tokens), noStore: true };
}

/** A rejection with the HTTP API's body; anything but a TollgateError is `internal`, its text kept private. */
export function errorReply(err, cookies = []) {
  const known = err && err.name === 'TollgateError' && typeof err.code === 'string';
  const code = known ? err.code : 'internal';
  const status = known && Number.isInteger(err.status) ? err.status : 500;
  const message = known ? err.message : 'internal error in the application or the adapter';
  return { status, body: { error: { code, message } }, cookies, noStore: true };
}

const refusal = (code, status, message) => errorReply(tollgateError(code, status, message));
const FORBIDDEN = () => refusal('forbidden', 403, 'this state-changing request comes from another origin; send it from a page of this site (or list its origin in allowedOrigins)');

/** The CSRF decision of docs/cookies.md ("Cross-site request forgery"): true when allowed. */
export function sameOriginRequest(opts, req) {
  const origin = req.header('origin');
  if (origin && opts.allowedOrigins.has(origin)) return true;
  const site = req.header('sec-fetch-site');
  if (site) return site === 'same-origin' || site === 'none';
  if (origin) {
    const at = origin.indexOf('://');
    if (at < 0 || !req.host) return false; // 'null' and the like
    return origin.slice(at + 3).toLowerCase() === req.host.toLowerCase();
  }
  return true;
}

/** The access token of a request: `{ token, fromCookie }`, or a Reply refusing it. */
function credentials(opts, req) {
  const auth = req.header('authorization');
  if (auth !== undefined && auth !== null) {
    // As the Rust surfaces read it (src/http, bearer_of): the scheme in any case, spaces or
    // tabs, one token without spaces or tabs.
    const m = /^Bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(auth);
    if (!m) return { reply: refusal('unauthorized', 401, 'the Authorization header must be "Bearer <access token>"') };
    return { token: m[1], fromCookie: false };
  }
  if (opts.accessCookie) {
    const token = readCookie(req.header('cookie'), opts.accessCookie);
    if (token) return { token, fromCookie: true };
  }
  return { reply: refusal('unauthorized', 401, 'this route needs an access token: send Authorization: Bearer <token>, or sign in') };
}

/** A route's verify mode, checked when the route is built. */
export function routeMode(options = {}) {
  const mode = options.mode ?? 'strict';
  if (mode !== 'strict' && mode !== 'stateless') throw invalid('mode', "'strict' (the default) or 'stateless'");
  return mode;
}

/** The state of one adapter: its manager and checked options; every handler answers a Reply. */
export function sessionsCore(manager, options) {
  if (!manager || typeof manager.verify !== 'function') throw invalid('manager', 'pass the manager createManager() answered');
  const opts = adapterOptions(options);
  const stateChanging = (req) => !SAFE_METHODS.has(req.method.toUpperCase());

  return {
    options: opts,

    /** Verifies a protected request: `{ verified }` or `{ reply }`. */
    async authenticate(req, mode) {
      // A cookie-carried token on a state-changing request: check the origin before reading it.
      const bearer = req.header('authorization');
      if ((bearer === undefined || bearer === null) && opts.accessCookie && stateChanging(req) && !sameOriginRequest(opts, req)) {
        return { reply: FORBIDDEN() };
      }
      const cred = credentials(opts, req);
      if (cred.reply) return cred;
      try {
        return { verified: await manager.verify(cred.token, mode) };
      } catch (err) {
        return { reply: errorReply(err) };
      }
    },

    async signIn(req, user, { claims, metadata } = {}) {
      if (!sameOriginRequest(opts, req)) return FORBIDDEN();
      try {
        return tokensReply(opts, await manager.issue(user, { claims, metadata, client: clientOf(opts, req) }));
      } catch (err) {
        return errorReply(err);
      }
    },

    async refresh(req) {
      if (req.method.toUpperCase() !== 'POST') return refusal('method_not_allowed', 405, 'refresh with POST');
      if (!sameOriginRequest(opts, req)) return FORBIDDEN();
      const token = readCookie(req.header('cookie'), opts.refreshCookie);
      if (!token) return refusal('unauthorized', 401, 'no refresh cookie: sign in');
      try {
        // A loser of a race within the grace window gets the winner's successor here: same cookie, 200.
        return tokensReply(opts, await manager.refresh(token, { client: clientOf(opts, req) }));
      } catch (err) {
        return errorReply(err, DEAD_REFRESH.has(err?.code) ? clearCookies(opts) : []);
      }
    },

    async signOut(req) {
      if (req.method.toUpperCase() !== 'POST') return refusal('method_not_allowed', 405, 'sign out with POST');
      if (!sameOriginRequest(opts, req)) return FORBIDDEN();
      const signedOut = { status: 200, body: { signed_out: true }, cookies: clearCookies(opts), noStore: true };
      let session = null; // { user, sid }
      const cred = credentials(opts, req);
      if (cred.token) {
        try {
          const { claims } = await manager.verify(cred.token, 'stateless');
          if (claims.sid) session = { user: claims.sub, sid: claims.sid };
        } catch {
          // an unusable access token: the refresh cookie may still name the session
        }
      }
      if (!session) {
        const token = readCookie(req.header('cookie'), opts.refreshCookie);
        if (!token) return signedOut;
        try {
          const { session: s } = await manager.refresh(token); // proves the cookie, names the session
          session = { user: s.user, sid: s.sid };
        } catch (err) {
          return DEAD_REFRESH.has(err?.code) ? signedOut : errorReply(err);
        }
      }
      try {
        await manager.revoke(session.user, session.sid);
      } catch (err) {
        if (!DEAD_REFRESH.has(err?.code)) return errorReply(err);
      }
      return signedOut;
    },

    /** The caller's sessions, the one of this request marked `current`: `{ sessions: [...] }` (strict verify). */
    async listSessions(req) {
      const { verified, reply } = await this.authenticate(req, 'strict');
      if (reply) return reply;
      try {
        const { sub, sid } = verified.claims;
        const sessions = await manager.list(sub, { current: sid ?? null });
        return { status: 200, body: { sessions: sessions.map(sessionJson) }, cookies: [], noStore: true };
      } catch (err) {
        return errorReply(err);
      }
    },

    async signOutEverywhere(req) {
      if (req.method.toUpperCase() !== 'POST') return refusal('method_not_allowed', 405, 'sign out everywhere with POST');
      if (!sameOriginRequest(opts, req)) return FORBIDDEN();
      const cred = credentials(opts, req);
      if (cred.reply) return cred.reply;
      try {
        const { claims } = await manager.verify(cred.token, 'strict');
        const revoked = await manager.revokeAll(claims.sub);
        return { status: 200, body: { revoked }, cookies: clearCookies(opts), noStore: true };
      } catch (err) {
        return errorReply(err);
      }
    },
  };
}

// tollgate/hono: Hono middleware and handlers; the behaviour is adapter.js's (docs/cookies.md).
import { routeMode, sessionsCore, errorReply } from './adapter.js';
import { tollgateError } from './errors.js';

// The peer address, where the runtime hands one to Hono: Node (@hono/node-server:
// c.env.incoming), Bun (Bun.serve's server as env: requestIP), Deno (Deno.serve's info as env:
// remoteAddr). workerd and Vercel Edge give none: use trustedProxy 'cf-connecting-ip' or
// 'x-forwarded-for:N' there.
function peerOf(c) {
  try {
    const env = c.env;
    if (!env || typeof env !== 'object') return null;
    const node = env.incoming?.socket?.remoteAddress;
    if (typeof node === 'string') return node;
    if (typeof env.requestIP === 'function') {
      const bun = env.requestIP(c.req.raw)?.address;
      if (typeof bun === 'string') return bun;
    }
    const deno = env.remoteAddr?.hostname;
    if (typeof deno === 'string') return deno;
  } catch {
    // an env without these shapes: no peer
  }
  return null;
}

const request = (c) => ({
  method: c.req.method,
  header: (name) => c.req.header(name),
  host: c.req.header('host') ?? new URL(c.req.url).host,
  peer: peerOf(c),
});

function respond(c, reply) {
  for (const cookie of reply.cookies) c.header('Set-Cookie', cookie, { append: true });
  if (reply.noStore) c.header('Cache-Control', 'no-store');
  return c.json(reply.body, reply.status);
}

/** Sessions for a Hono app: `requireSession()` middleware and the sign-in, refresh and sign-out handlers. */
export function tollgate(manager, options) {
  const core = sessionsCore(manager, options);
  return {
    requireSession(routeOptions) {
      const mode = routeMode(routeOptions);
      return async (c, next) => {
        const { verified, reply } = await core.authenticate(request(c), mode);
        if (reply) return respond(c, reply);
        c.set('tollgate', verified);
        await next();
      };
    },
    /** The verified claims and session of this request; `internal` when requireSession() did not run. */
    verified(c) {
      const v = c.get('tollgate');
      if (!v) throw tollgateError('internal', 500, 'requireSession() is not installed on this route');
      return v;
    },
    signIn: async (c, user, signInOptions) => respond(c, await core.signIn(request(c), user, signInOptions)),
    refresh: async (c) => respond(c, await core.refresh(request(c))),
    signOut: async (c) => respond(c, await core.signOut(request(c))),
    signOutEverywhere: async (c) => respond(c, await core.signOutEverywhere(request(c))),
    /** The caller's sessions, this one marked `current` (strict): `{ sessions }`. */
    listSessions: async (c) => respond(c, await core.listSessions(request(c))),
    /** Answers any error (a TollgateError with its status, anything else as `internal`), e.g. from app.onError. */
    errorResponse: (c, err) => respond(c, errorReply(err)),
  };
}

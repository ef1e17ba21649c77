// tollgate/express: Express 5 middleware and handlers; the behaviour is adapter.js's (docs/cookies.md).
import { routeMode, sessionsCore, errorReply } from './adapter.js';
import { tollgateError } from './errors.js';

const request = (req) => ({
  method: req.method,
  header: (name) => req.get(name),
  host: req.headers.host,
  // Node: the socket's remote address (Express's req.ip would apply its own proxy setting).
  peer: req.socket?.remoteAddress ?? null,
});

function respond(res, reply) {
  if (reply.cookies.length > 0) res.append('Set-Cookie', reply.cookies);
  if (reply.noStore) res.set('Cache-Control', 'no-store');
  res.status(reply.status).json(reply.body);
}

/** Sessions for an Express 5 app: `requireSession()` middleware and the sign-in, refresh and sign-out handlers. */
export function tollgate(manager, options) {
  const core = sessionsCore(manager, options);
  return {
    requireSession(routeOptions) {
      const mode = routeMode(routeOptions);
      return async (req, res, next) => {
        const { verified, reply } = await core.authenticate(request(req), mode);
        if (reply) return respond(res, reply);
        req.tollgate = verified;
        next();
      };
    },
    /** The verified claims and session of this request; `internal` when requireSession() did not run. */
    verified(req) {
      if (!req.tollgate) throw tollgateError('internal', 500, 'requireSession() is not installed on this route');
      return req.tollgate;
    },
    signIn: async (req, res, user, signInOptions) => respond(res, await core.signIn(request(req), user, signInOptions)),
    refresh: async (req, res) => respond(res, await core.refresh(request(req))),
    signOut: async (req, res) => respond(res, await core.signOut(request(req))),
    signOutEverywhere: async (req, res) => respond(res, await core.signOutEverywhere(request(req))),
    /** The caller's sessions, this one marked `current` (strict): `{ sessions }`. */
    listSessions: async (req, res) => respond(res, await core.listSessions(request(req))),
    /** An Express error handler answering any error (a TollgateError with its status, anything else as `internal`). */
    errorHandler: (err, req, res, next) => (res.headersSent ? next(err) : respond(res, errorReply(err))),
  };
}

// tollgate/express: Express 5 middleware generic over the app's claims (C) and session metadata (M).
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { AccessClaims, Json, SessionInfo, TollgateManager } from './index.js';
import type { AdapterOptions, AnyVerified, CustomClaims, SignInOptions } from './adapter.js';

export type * from './adapter.js';

declare global {
  namespace Express {
    interface Request {
      /** Set by requireSession(); typed by `sessions.verified(req)`. */
      tollgate?: { claims: AccessClaims; session: SessionInfo | null };
    }
  }
}

export interface ExpressSessions<C extends CustomClaims, M extends Json> {
  /** Verifies the bearer token (or the access cookie): `strict` (default) also checks the live session. */
  requireSession(options?: { mode?: 'strict' | 'stateless' }): RequestHandler;
  /** The verified claims and session of this request; throws `internal` when requireSession() did not run. */
  verified(req: Request): AnyVerified<C, M>;
  /** Issues a session for `user` (authenticated by the app), sets the cookies, answers the tokens body. */
  signIn(req: Request, res: Response, user: string, options?: SignInOptions<C, M>): Promise<void>;
  /** `POST`: rotates the refresh cookie. */
  refresh: RequestHandler;
  /** `POST`: revokes this session, clears the cookies. */
  signOut: RequestHandler;
  /** `POST`: revokes every session of the user, clears the cookies. */
  signOutEverywhere: RequestHandler;
  /** The caller's sessions (strict verify), this request's marked `current`: `{ sessions }`. */
  listSessions: RequestHandler;
  /** Answers any error in the adapter's shape. */
  errorHandler: ErrorRequestHandler;
}

export declare function tollgate<C extends CustomClaims = {}, M extends Json = Json>(
  manager: TollgateManager,
  options?: AdapterOptions,
): ExpressSessions<C, M>;

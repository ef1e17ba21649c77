// tollgate/hono: Hono middleware generic over the app's claims (C) and session metadata (M).
import type { Context, MiddlewareHandler } from 'hono';
import type { TollgateManager } from './index.js';
import type { AdapterOptions, AnyVerified, CustomClaims, SignInOptions, StatelessVerified, StrictVerified } from './adapter.js';
import type { Json } from './index.js';

export type * from './adapter.js';

export interface HonoSessions<C extends CustomClaims, M extends Json> {
  /** Verifies the bearer token (or the access cookie) and the live session; sets `c.get('tollgate')`. */
  requireSession(options?: { mode?: 'strict' }): MiddlewareHandler<{ Variables: { tollgate: StrictVerified<C, M> } }>;
  /** Verifies signature and claims only; `session` is null. */
  requireSession(options: { mode: 'stateless' }): MiddlewareHandler<{ Variables: { tollgate: StatelessVerified<C> } }>;
  /** The verified claims and session of this request; throws `internal` when requireSession() did not run. */
  verified(c: Context): AnyVerified<C, M>;
  /** Issues a session for `user` (authenticated by the app), sets the cookies, answers the tokens body. */
  signIn(c: Context, user: string, options?: SignInOptions<C, M>): Promise<Response>;
  /** `POST`: rotates the refresh cookie. */
  refresh(c: Context): Promise<Response>;
  /** `POST`: revokes this session, clears the cookies. */
  signOut(c: Context): Promise<Response>;
  /** `POST`: revokes every session of the user, clears the cookies. */
  signOutEverywhere(c: Context): Promise<Response>;
  /** The caller's sessions (strict verify), this request's marked `current`: `{ sessions }`. */
  listSessions(c: Context): Promise<Response>;
  /** Answers any error in the adapter's shape (for app.onError). */
  errorResponse(c: Context, err: unknown): Response;
}

export declare function tollgate<C extends CustomClaims = {}, M extends Json = Json>(
  manager: TollgateManager,
  options?: AdapterOptions,
): HonoSessions<C, M>;

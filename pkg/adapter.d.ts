// Types shared by tollgate/hono and tollgate/express (the options of docs/cookies.md).
import type { AccessClaims, Json, SessionInfo } from './index.js';

type CookieName = `__Host-${string}` | `__Secure-${string}`;

/** The adapter options, named as in docs/cookies.md; a bad one is refused at start with `config_invalid`. */
export interface AdapterOptions {
  /** Name of the refresh-token cookie (default `__Host-tg_refresh`). */
  refreshCookie?: CookieName;
  /** `Path` of the refresh cookie (default `/`; a `__Host-` cookie must keep `/`). */
  refreshCookiePath?: `/${string}`;
  /** `off` (default): the access token is in the body, for `Authorization: Bearer`; a name: it is set in that cookie instead. */
  accessCookie?: 'off' | CookieName;
  /** `SameSite` of both cookies (default `strict`). */
  sameSite?: 'strict' | 'lax';
  /** Where the client IP comes from (default `none`). */
  trustedProxy?: 'none' | 'cf-connecting-ip' | `x-forwarded-for:${number}`;
  /** Other origins (`https://app.example`) whose pages may send state-changing requests with cookies. */
  allowedOrigins?: string[];
}

/** The app's own claims, beside the registered ones. */
export type CustomClaims = { [claim: string]: Json };
export type Claims<C extends CustomClaims> = AccessClaims & C;
export type Session<M extends Json> = Omit<SessionInfo, 'metadata'> & { metadata: M };

/** What a strict route knows: the claims and the live session. */
export interface StrictVerified<C extends CustomClaims, M extends Json> {
  claims: Claims<C>;
  session: Session<M>;
}
/** What a stateless route knows: the claims only. */
export interface StatelessVerified<C extends CustomClaims> {
  claims: Claims<C>;
  session: null;
}
export type AnyVerified<C extends CustomClaims, M extends Json> = StrictVerified<C, M> | StatelessVerified<C>;

export interface SignInOptions<C extends CustomClaims, M extends Json> {
  /** Written into every access token of the session. */
  claims?: C;
  /** Stored with the session. */
  metadata?: M;
}

/** The body of sign-in and refresh (`access_token` is absent with an access cookie). */
export interface TokensBody<M extends Json> {
  access_token?: string;
  access_expires_at: number;
  session: {
    sid: string;
    user: string;
    created_at: number;
    last_seen: number;
    idle_expires_at: number;
    absolute_expires_at: number;
    generation: number;
    metadata: M;
    ip: string | null;
    user_agent: string | null;
  };
}

/** The body of `listSessions`: the caller's sessions, its own marked `current`. */
export interface SessionsBody<M extends Json> {
  sessions: (TokensBody<M>['session'] & { current: boolean })[];
}

// Types of the tollgate npm package (hand-written; the Rust facade is src/wasm).

/** The stable codes of `TollgateError.code`; they match the Rust `ErrorCode` strings. */
export type TollgateErrorCode =
  | 'bad_request'
  | 'token_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'session_not_found'
  | 'session_revoked'
  | 'session_expired'
  | 'refresh_token_reused'
  | 'session_limit'
  | 'store_unavailable'
  | 'store_corrupt'
  | 'conflict'
  | 'config_invalid'
  | 'internal';

/** What every tollgate method rejects with: an `Error` named `TollgateError`. */
export interface TollgateError extends Error {
  name: 'TollgateError';
  code: TollgateErrorCode;
  /** The HTTP status an API answers this code with (401, 404, 409, 503, ...). */
  status: number;
}

export type Algorithm = 'HS256' | 'HS384' | 'HS512' | 'ES256' | 'EdDSA' | 'RS256';

/** A JSON value (metadata, custom claims, cached user info). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A key accepted for verification only (`verifyKeys`): the previous signing key, another issuer's public key. */
export type VerifyKey =
  /** An HMAC secret (its UTF-8 bytes): at least 32 bytes for HS256, 48 for HS384, 64 for HS512. */
  | { kid: string; alg?: 'HS256' | 'HS384' | 'HS512'; secret: string }
  /** An SPKI public key ("BEGIN PUBLIC KEY") or a PKCS#8 private key ("BEGIN PRIVATE KEY"). */
  | { kid: string; alg: Algorithm; pem: string }
  /** A JWK: oct, EC P-256, OKP Ed25519 or RSA. `alg` defaults from the JWK. */
  | { kid: string; alg?: Algorithm; jwk: JsonWebKey };

/** A duration: a number of seconds, or text with a unit: '500ms', '10s', '15m', '12h', '14d'. */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h' | 'd'}`;

/** A stored value as a JS store answers it. */
export interface StoredValue {
  /** Opaque bytes: store them as given. */
  value: Uint8Array;
  /** Changes on every write: a non-negative integer, as a number or a decimal string. */
  version: number | string;
}

/** What a write expects of the key before it applies. */
export type Expectation =
  | { expect: 'absent' }
  | { expect: 'any' }
  | { expect: 'version'; version: number | string };

export type StoreOp =
  | ({ type: 'put'; key: string; value: Uint8Array; /** Unix ms; the store may drop the key then, and must not return it after. */ expiresAt: number } & Expectation)
  | ({ type: 'delete'; key: string } & Expectation);

/**
 * A session store written in JavaScript (Deno KV, SQL, ...).
 * `commit` checks every expectation first, then applies every op, or none.
 */
export interface TollgateStore {
  /** One entry per key, in order: `null` when missing or expired. */
  get(keys: string[]): Promise<(StoredValue | null | undefined)[]>;
  /** `true` when every op was applied; `false` when an expectation failed and nothing was written. */
  commit(ops: StoreOp[]): Promise<boolean>;
  /** What the store guarantees; every field defaults to the strong choice. */
  caps?: { atomic?: boolean; consistent?: boolean; minTtlMs?: number };
}

/**
 * What `redisStore()` of `tollgate/redis-store` answers: a Redis client's
 * transport, driven by the WebAssembly module with the Rust store's format.
 */
export interface RedisTransport {
  readonly kind: 'tollgate-redis';
  readonly prefix: string;
  defineCommit(lua: string): void;
  mget(keys: string[]): Promise<(Uint8Array | null)[]>;
  commit(keys: string[], args: Uint8Array[]): Promise<number>;
}

/** The settings of every tollgate surface, by their JavaScript names (the README's settings table). */
interface SettingsBase {
  /** Written as `iss`, required on verify. */
  issuer?: string;
  /** Accepted audiences; the first is written as `aud`. */
  audience?: string | string[];
  /** Id of the signing key, written as the `kid` header (default 'k1'). */
  kid?: string;
  /** Keys accepted for verification only (rotation). */
  verifyKeys?: VerifyKey[];
  /** Clock slack for exp/nbf (default 30 s). */
  leeway?: Duration;
  /** Access-token lifetime (default 15 min). */
  accessTtl?: Duration;
  /** Sliding idle lifetime of a session (default 14 days). */
  idleTtl?: Duration;
  /** Absolute lifetime of a session, never extended (default 30 days). */
  absoluteTtl?: Duration;
  /** Window in which a rotated refresh token still answers the same successor (default 30 s). */
  refreshGrace?: Duration;
  /** The sliding expiry is written at most this often (default 60 s). */
  touchInterval?: Duration;
  /** Lifetime of cached user info (default 5 min). */
  userCacheTtl?: Duration;
  /** At most this many live sessions per user (default 100; the oldest is evicted, see onLimit). */
  maxSessionsPerUser?: number;
  /** At the limit: revoke the oldest (default) or refuse with `session_limit`. */
  onLimit?: 'evict_oldest' | 'refuse';
  /** Prefix of refresh tokens, 1 to 16 of a-z0-9 (default "tgr"). */
  refreshPrefix?: string;
  maxTokenBytes?: number;
  maxMetadataBytes?: number;
  maxClaimsBytes?: number;
  /** Attempts per operation when concurrent writers collide (default 16). */
  maxAttempts?: number;
  /** Keys the manager remembers of its own commits, so a refresh of a session it wrote last
   *  commits without reading first, on a store that answers commit versions (Redis); 0: none
   *  (default 16384). */
  recentWrites?: number;
  /** The mode of `verify(token)` without one (default 'strict'). */
  verifyMode?: VerifyMode;
  /** How session records are written (default 'compact'); 'json' while a rolling upgrade from a release before format 3 runs. */
  recordFormat?: 'compact' | 'json';
  /** Where sessions live: `redisStore(client)` of `tollgate/redis-store`, your own store, or (when absent) this instance's memory. */
  store?: TollgateStore | RedisTransport;
  /**
   * Called with each audit event once the operation that caused it committed (issued,
   * refreshed, revoked, revoked_all, reuse_detected, limit_evicted), before the
   * operation's Promise settles. What it throws is logged and dropped. Never carries a token or secret.
   */
  onAudit?: (event: AuditEvent) => void;
}

export type AuditKind = 'issued' | 'refreshed' | 'revoked' | 'revoked_all' | 'reuse_detected' | 'limit_evicted';

export interface AuditEvent {
  kind: AuditKind;
  user: string;
  /** The session; for `revoked_all`, the one kept (or null). */
  sid: string | null;
  /** Unix ms. */
  at: number;
  /** The client of the request that caused it, where known (issue, refresh, reuse, eviction). */
  ip: string | null;
  userAgent: string | null;
  /** `revoked_all` only: how many sessions were revoked. */
  count?: number;
}

/** The client of a sign-in or refresh: its IP (canonical text) and User-Agent, kept with the session. */
export interface ClientInfo {
  ip?: string | null;
  userAgent?: string | null;
}

/** Signs with an HMAC secret, or with a private key (PKCS#8 PEM or JWK) for an asymmetric algorithm. */
export type TollgateConfig = SettingsBase &
  (
    | {
        /** HMAC signing secret: 32+ bytes for HS256 (48 HS384, 64 HS512). */ secret: string;
        signingKey?: undefined;
        alg?: 'HS256' | 'HS384' | 'HS512';
        /** Authenticates stored sessions (default: derived from `secret`); when rotating `secret`, set it to the old one. */
        refreshSecret?: string;
      }
    | {
        secret?: undefined;
        /** A PKCS#8 PEM, or a private JWK. */ signingKey: string | JsonWebKey;
        alg?: Algorithm;
        /** 32+ bytes that authenticate stored sessions (a store writer cannot mint tokens); keep it across key rotations. */
        refreshSecret: string;
      }
  );

export interface SessionInfo {
  sid: string;
  user: string;
  createdAt: number;
  lastSeen: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  /** Number of refreshes so far. */
  generation: number;
  metadata: Json;
  /** The client IP of the sign-in or last refresh (canonical text), or null. */
  ip: string | null;
  /** The User-Agent of the sign-in or last refresh (at most 256 bytes), or null. */
  userAgent: string | null;
  /** In `list()` only: whether it is the session `{ current }` named. */
  current?: boolean;
}

export interface Tokens {
  accessToken: string;
  /** Unix ms. */
  accessExpiresAt: number;
  refreshToken: string;
  session: SessionInfo;
}

/** The claims of a verified access token: the registered ones and the caller's own. */
export interface AccessClaims {
  sub: string;
  sid?: string;
  jti?: string;
  iss?: string;
  aud?: string | string[];
  iat?: number;
  exp: number;
  nbf?: number;
  [claim: string]: Json | undefined;
}

export interface Verified {
  claims: AccessClaims;
  /** The session, read in strict mode; `null` in stateless mode. */
  session: SessionInfo | null;
}

export type VerifyMode = 'stateless' | 'strict';

export interface Jwks {
  keys: (JsonWebKey & { kid: string; alg: Algorithm; use: 'sig' })[];
}

export declare class TollgateManager {
  private constructor();
  /** Starts a session. `claims` go into every access token of it; `metadata` is stored with it. */
  issue(user: string, options?: { claims?: { [claim: string]: Json }; metadata?: Json; client?: ClientInfo }): Promise<Tokens>;
  /** Verifies an access token. `strict` (the default) also checks the session is live. */
  verify(accessToken: string, mode?: VerifyMode): Promise<Verified>;
  /** Rotates a refresh token; a reused one revokes the session (`refresh_token_reused`). */
  refresh(refreshToken: string, options?: { client?: ClientInfo }): Promise<Tokens>;
  revoke(user: string, sid: string): Promise<void>;
  /** Revokes all the user's sessions but `except`; answers how many. */
  revokeAll(user: string, options?: { except?: string }): Promise<number>;
  /** The user's live sessions, oldest first; each has `current`: whether it is the session `current` names. */
  list(user: string, options?: { current?: string | null }): Promise<(SessionInfo & { current: boolean })[]>;
  updateMetadata(user: string, sid: string, metadata: Json): Promise<SessionInfo>;
  /** The public keys as a JWKS (no HMAC keys). */
  jwks(): Jwks;
  /** Cached user info, or `null` on a miss. */
  userInfo(user: string): Promise<Json>;
  /** Cached user info; on a miss the loader is called and its answer cached. What the loader throws is thrown unchanged. */
  userInfo<T extends Json>(user: string, loader: (user: string) => T | Promise<T>): Promise<T>;
  putUserInfo(user: string, info: Json): Promise<void>;
  /** Reloads and caches each user's info; answers how many. */
  refreshUserInfo(users: string | string[], loader: (user: string) => Json | Promise<Json>): Promise<number>;
  deleteUserInfo(user: string): Promise<void>;
  /** Releases the wasm memory of this manager (optional; garbage collection does it too). */
  free(): void;
}

/**
 * The client IP by the trusted-proxy rule (docs/cookies.md, "Client IP"), written once in Rust:
 * `trustedProxy` is 'none' (the peer), 'x-forwarded-for:N' or 'cf-connecting-ip'; `peer` the
 * socket's remote address or null; `headers` the request's `x-forwarded-for` and
 * `cf-connecting-ip` values. Answers the canonical IP text, or null (never a guess). Runs once
 * the module is loaded (after createManager() or init()).
 */
export declare function clientIp(
  trustedProxy: 'none' | 'cf-connecting-ip' | `x-forwarded-for:${number}`,
  peer: string | null,
  headers: { 'x-forwarded-for'?: string | null; 'cf-connecting-ip'?: string | null },
): string | null;

/** Builds a manager: imports the keys once and picks the store. */
export declare function createManager(config: TollgateConfig): Promise<TollgateManager>;

/**
 * What `init()` instantiates tollgate_bg.wasm from: a compiled module (from any
 * realm: a `?module` import, a binding, a vm context's host), its bytes, a
 * Response or a URL to fetch.
 */
export type WasmSource = WebAssembly.Module | ArrayBuffer | ArrayBufferView | Response | URL | string;

/**
 * Instantiates the wasm module from `source`, once for the whole package; later
 * calls answer the first one's result. Optional with `tollgate` (each runtime's
 * entry finds the module by itself on the first createManager()); required
 * first with `tollgate/init`. A failed init may be retried.
 */
export declare function init(source: WasmSource | Promise<WasmSource>): Promise<void>;

// Type-checked (never run) by `tsc --noEmit -p js`: the package's types as a
// user's code meets them. Lines marked @ts-expect-error must stay errors.
import { createManager, type TollgateError, type TollgateStore, type Tokens, type Verified, type SessionInfo } from 'tollgate';
import { redisStore } from 'tollgate/redis-store';
import * as bare from 'tollgate/init';

const store: TollgateStore = {
  async get(keys) {
    return keys.map(() => null);
  },
  async commit(ops) {
    for (const op of ops) {
      if (op.type === 'put') {
        const until: number = op.expiresAt;
        const value: Uint8Array = op.value;
        void until, value;
      }
      if (op.expect === 'version') {
        const v: number | string = op.version;
        void v;
      }
    }
    return true;
  },
  caps: { atomic: true },
};

// Stands in for an ioredis client (its types need @types/node, which this check leaves out).
declare const redis: {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
  mgetBuffer(keys: string[]): Promise<(Uint8Array | null)[]>;
};

async function main(): Promise<void> {
  const m = await createManager({
    signingKey: '-----BEGIN PRIVATE KEY-----...',
    alg: 'ES256',
    refreshSecret: 'a refresh secret of thirty-two bytes+',
    kid: 'k2',
    verifyKeys: [
      { kid: 'k1', secret: 'a secret of at least thirty-two bytes!!' },
      { kid: 'k0', jwk: { kty: 'OKP', crv: 'Ed25519', x: '...' } },
      { kid: 'partner', alg: 'RS256', pem: '-----BEGIN PUBLIC KEY-----...' },
    ],
    issuer: 'https://auth.example',
    audience: ['api'],
    accessTtl: 900,
    idleTtl: '14d',
    refreshGrace: '500ms',
    verifyMode: 'strict',
    maxSessionsPerUser: 5,
    onLimit: 'refuse',
    store,
  });

  const tokens: Tokens = await m.issue('user-1', { claims: { role: 'admin' }, metadata: { device: 'phone' } });
  const verified: Verified = await m.verify(tokens.accessToken, 'stateless');
  const sub: string = verified.claims.sub;
  const role = verified.claims.role;
  const session: SessionInfo | null = (await m.verify(tokens.accessToken)).session;
  const next: Tokens = await m.refresh(tokens.refreshToken);
  await m.revoke('user-1', next.session.sid);
  const n: number = await m.revokeAll('user-1', { except: next.session.sid });
  const list: SessionInfo[] = await m.list('user-1');
  const updated: SessionInfo = await m.updateMetadata('user-1', next.session.sid, { device: 'tablet' });
  const kid: string = m.jwks().keys[0].kid;
  const info = await m.userInfo('user-1', async (user) => ({ user, plan: 'pro' }));
  const plan: string = info.plan;
  const cached = await m.userInfo('user-1');
  await m.putUserInfo('user-1', { plan: 'free' });
  const refreshed: number = await m.refreshUserInfo(['user-1'], () => ({ plan: 'pro' }));
  await m.deleteUserInfo('user-1');

  try {
    await m.refresh(tokens.refreshToken);
  } catch (e) {
    const err = e as TollgateError;
    if (err.code === 'refresh_token_reused') console.log(err.status, err.message);
    // @ts-expect-error: not one of the codes
    if (err.code === 'token_reused') console.log('never');
  }

  // @ts-expect-error: mode is 'stateless' or 'strict'
  await m.verify(tokens.accessToken, 'lenient');
  // @ts-expect-error: the keys array is gone: secret or signingKey, and verifyKeys
  await createManager({ keys: { kid: 'k', secret: 's' } });
  // @ts-expect-error: a secret or a signing key, not both
  await createManager({ secret: 's', signingKey: '-----BEGIN PRIVATE KEY-----...' });
  // @ts-expect-error: a signing key needs a refresh secret (it has no secret to derive one from)
  await createManager({ signingKey: '-----BEGIN PRIVATE KEY-----...', alg: 'ES256' });
  // @ts-expect-error: a secret signs with HMAC only
  await createManager({ secret: 's', alg: 'ES256' });
  // @ts-expect-error: a verify key needs its material
  await createManager({ secret: 's', verifyKeys: [{ kid: 'k' }] });
  // @ts-expect-error: a duration's unit is ms, s, m, h or d
  await createManager({ secret: 's', accessTtl: '15 minutes' });
  // @ts-expect-error: verifyMode is 'stateless' or 'strict'
  await createManager({ secret: 's', verifyMode: 'lenient' });

  const shared = await createManager({ secret: 's', store: redisStore(redis, { prefix: 'app:' }) });
  await createManager({ secret: 's', store: redisStore(redis) });
  // @ts-expect-error: the prefix is an option
  redisStore(redis, 'app:');
  // @ts-expect-error: a store's values are bytes
  await createManager({ secret: 's', store: { get: async () => [{ value: 'text', version: 1 }], commit: async () => true } });
  void [sub, role, session, n, list, updated, kid, plan, cached, refreshed, shared];
}

void main;

// init() from any realm: a compiled module, bytes, or a promise of either.
declare const compiled: WebAssembly.Module;
declare const bytes: Uint8Array;
async function initialise(): Promise<void> {
  await bare.init(compiled);
  await bare.init(bytes.buffer);
  await bare.init(Promise.resolve(bytes));
  const m: import('tollgate').TollgateManager = await bare.createManager({ secret: 'a secret of at least thirty-two bytes!!' });
  void m;
}
void initialise;

// The framework adapters, generic over the app's claims and metadata.
import { Hono } from 'hono';
import express from 'express';
import { tollgate as honoSessions } from 'tollgate/hono';
import { tollgate as expressSessions } from 'tollgate/express';

type AppClaims = { role: 'admin' | 'reader' };
type AppMetadata = { device: string };

async function adapters(m: import('tollgate').TollgateManager): Promise<void> {
  const auth = honoSessions<AppClaims, AppMetadata>(m, { accessCookie: '__Host-tg_access', sameSite: 'lax', allowedOrigins: ['https://app.example'] });
  const app = new Hono();
  app.get('/me', auth.requireSession(), (c) => {
    const { claims, session } = c.get('tollgate');
    const role: 'admin' | 'reader' = claims.role;
    const device: string = session.metadata.device;
    return c.json({ sub: claims.sub, role, device });
  });
  app.get('/fast', auth.requireSession({ mode: 'stateless' }), (c) => {
    const v = c.get('tollgate');
    const none: null = v.session;
    return c.json({ sub: v.claims.sub, none });
  });
  app.post('/login', (c) => auth.signIn(c, 'user-1', { claims: { role: 'reader' }, metadata: { device: 'phone' } }));
  app.post('/auth/refresh', auth.refresh);
  app.post('/auth/sign-out', auth.signOut);
  app.post('/auth/sign-out-everywhere', auth.signOutEverywhere);
  // @ts-expect-error: the claims are the app's type
  app.post('/bad', (c) => auth.signIn(c, 'user-1', { claims: { role: 'owner' } }));
  // @ts-expect-error: a refresh cookie needs the __Host- or __Secure- prefix
  honoSessions(m, { refreshCookie: 'refresh' });

  const sessions = expressSessions<AppClaims, AppMetadata>(m, { trustedProxy: 'x-forwarded-for:1' });
  const server = express();
  server.get('/me', sessions.requireSession(), (req, res) => {
    const { claims, session } = sessions.verified(req);
    const role: 'admin' | 'reader' = claims.role;
    res.json({ role, device: session?.metadata.device ?? null, raw: req.tollgate?.claims.sub });
  });
  server.post('/login', (req, res) => sessions.signIn(req, res, 'user-1', { metadata: { device: 'laptop' } }));
  server.post('/auth/refresh', sessions.refresh);
  server.post('/auth/sign-out', sessions.signOut);
  server.use(sessions.errorHandler);
  // @ts-expect-error: mode is 'strict' or 'stateless'
  sessions.requireSession({ mode: 'lenient' });
}
void adapters;

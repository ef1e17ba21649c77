// The Hono example app: one source for Node (node.mjs) and workerd (worker.mjs).
// It follows the example-app contract every tollgate example shares (README,
// "Example apps"): GET / is the login page, POST /login signs a demo user in,
// /auth/* are the adapter's ready handlers, /api/* need a live session.
import { Hono } from 'hono';
import { createManager } from 'tollgate';
import { tollgate } from 'tollgate/hono';

const USER_ID = /^[a-z0-9-]{1,32}$/;
const DEMO_PASSWORD = 'demo-password';
// Adapter options (docs/cookies.md); every other TOLLGATE_* variable goes to createManager.
const ADAPTER_OPTIONS = new Set(['refreshCookie', 'refreshCookiePath', 'accessCookie', 'sameSite', 'trustedProxy', 'allowedOrigins']);

/**
 * Settings from TOLLGATE_* variables (process.env, or a Worker's vars and
 * secrets), renamed to the package's names (TOLLGATE_ACCESS_TTL -> accessTtl);
 * createManager checks them with the settings table every surface shares, so a
 * misspelt one is refused with config_invalid naming it.
 */
export function settingsFromEnv(env) {
  const manager = {};
  const adapter = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('TOLLGATE_') || typeof value !== 'string') continue;
    const js = name.slice('TOLLGATE_'.length).toLowerCase().replace(/_([a-z0-9])/g, (_, ch) => ch.toUpperCase());
    if (ADAPTER_OPTIONS.has(js)) adapter[js] = js === 'allowedOrigins' ? value.split(',').map((o) => o.trim()).filter(Boolean) : value;
    else manager[js] = value;
  }
  return { manager, adapter };
}

/** A session as the HTTP API and the axum example write it: snake_case names (createdAt -> created_at), unix ms. */
const sessionJson = (s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`), v]));

const unauthorized = (c) =>
  c.json({ error: { code: 'unauthorized', message: `unknown user or wrong password: a user id is 1 to 32 of a-z, 0-9 and '-', the password is ${DEMO_PASSWORD}` } }, 401);

/** The app, its sessions in the manager's memory store; `page` is examples/web/index.html. */
export async function createApp(env, page) {
  const settings = settingsFromEnv(env);
  const manager = await createManager(settings.manager);
  const auth = tollgate(manager, settings.adapter);
  const app = new Hono();

  app.get('/', (c) => c.html(page));

  app.post('/login', async (c) => {
    // Read as JSON whatever the Content-Type says: a form posting JSON-looking text/plain
    // still reaches signIn, whose origin check is what refuses a cross-site login.
    let body = null;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      // not JSON: refused below
    }
    const user = body?.user;
    if (typeof user !== 'string' || !USER_ID.test(user) || body.password !== DEMO_PASSWORD) return unauthorized(c);
    return auth.signIn(c, user);
  });

  app.post('/auth/refresh', auth.refresh);
  app.post('/auth/sign-out', auth.signOut);
  app.post('/auth/sign-out-everywhere', auth.signOutEverywhere);

  app.get('/api/me', auth.requireSession(), (c) => {
    const { claims } = c.get('tollgate');
    return c.json({ user: claims.sub, sid: claims.sid });
  });

  app.get('/api/sessions', auth.requireSession(), async (c) => {
    const { claims } = c.get('tollgate');
    return c.json({ sessions: (await manager.list(claims.sub)).map(sessionJson) });
  });

  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => auth.errorResponse(c, err));
  return app;
}

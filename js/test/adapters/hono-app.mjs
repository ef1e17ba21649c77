// The Hono app every runtime's test runs: the routes of docs/cookies.md's examples.
// The "authenticated" user comes from x-user (the app's own login is not tollgate's).
import { Hono } from 'hono';
import { tollgate } from 'tollgate/hono';

export function honoApp(manager, options) {
  const auth = tollgate(manager, options);
  const app = new Hono();
  app.post('/login', (c) =>
    auth.signIn(c, c.req.header('x-user'), { claims: { role: 'reader' }, metadata: { device: c.req.header('x-device') ?? 'web' } }),
  );
  app.get('/me', auth.requireSession(), (c) => {
    const { claims, session } = c.get('tollgate');
    return c.json({ sub: claims.sub, role: claims.role, device: session.metadata.device });
  });
  app.post('/me', auth.requireSession(), (c) => c.json({ sub: c.get('tollgate').claims.sub, changed: true }));
  app.get('/fast', auth.requireSession({ mode: 'stateless' }), (c) => c.json({ sub: c.get('tollgate').claims.sub, session: c.get('tollgate').session }));
  app.get('/unguarded', (c) => c.json(auth.verified(c)));
  app.post('/auth/refresh', auth.refresh);
  app.post('/auth/sign-out', auth.signOut);
  app.post('/auth/sign-out-everywhere', auth.signOutEverywhere);
  app.onError((err, c) => auth.errorResponse(c, err));
  return app;
}

/** `send` for the scenario: a plain request object through app.fetch, in this runtime. */
export function honoSender(apps) {
  return async (appName, { method, path, headers }) => {
    const res = await apps[appName].fetch(new Request(`https://app.example${path}`, { method, headers }));
    return { status: res.status, setCookie: res.headers.getSetCookie(), cacheControl: res.headers.get('cache-control'), body: await res.json() };
  };
}

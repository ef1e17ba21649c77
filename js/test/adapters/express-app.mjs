// The Express 5 app of the tests: the same routes as hono-app.mjs.
import express from 'express';
import { tollgate } from 'tollgate/express';

export function expressApp(manager, options) {
  const auth = tollgate(manager, options);
  const app = express();
  app.post('/login', (req, res) =>
    auth.signIn(req, res, req.get('x-user'), { claims: { role: 'reader' }, metadata: { device: req.get('x-device') ?? 'web' } }),
  );
  app.get('/me', auth.requireSession(), (req, res) => {
    const { claims, session } = auth.verified(req);
    res.json({ sub: claims.sub, role: claims.role, device: session.metadata.device });
  });
  app.post('/me', auth.requireSession(), (req, res) => res.json({ sub: auth.verified(req).claims.sub, changed: true }));
  app.get('/fast', auth.requireSession({ mode: 'stateless' }), (req, res) => res.json({ sub: req.tollgate.claims.sub, session: req.tollgate.session }));
  app.get('/unguarded', (req, res) => res.json(auth.verified(req)));
  app.post('/auth/refresh', auth.refresh);
  app.post('/auth/sign-out', auth.signOut);
  app.post('/auth/sign-out-everywhere', auth.signOutEverywhere);
  app.use(auth.errorHandler);
  return app;
}

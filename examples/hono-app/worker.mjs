// The Hono example app as a Worker module (workerd.mjs bundles and runs it):
// the page is bundled as text, settings come from the Worker's vars and secrets.
// Sessions live in the isolate's memory store (one local isolate; a deployed
// Worker has many, which would need a shared store).
import page from '../web/index.html';
import { createApp } from './app.mjs';

let app; // one per isolate, made on the first request (createManager is async)

export default {
  async fetch(request, env, ctx) {
    app ??= createApp(env, page);
    return (await app).fetch(request, env, ctx);
  },
};

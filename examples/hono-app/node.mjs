// The Hono example app in Node: `TOLLGATE_SECRET=... PORT=3000 node node.mjs`.
import { readFileSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { createApp } from './app.mjs';

const page = readFileSync(new URL('../web/index.html', import.meta.url), 'utf8');
const app = await createApp(process.env, page);
const port = Number(process.env.PORT ?? 3000);
serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, (info) => {
  console.log(`hono example app (node ${process.versions.node}) on http://127.0.0.1:${info.port}`);
});

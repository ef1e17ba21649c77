// Deno and Bun run this: the Hono scenario, then a sign-in through the runtime's own
// HTTP server, as one JSON line. The scenario calls app.fetch directly, so the
// server's half (the peer address Deno.serve and Bun.serve hand to Hono) is
// checked here, over a real socket on 127.0.0.1.
import { createManager } from 'tollgate';
import { honoScenario } from './hono-scenario.mjs';
import { honoApp } from './hono-app.mjs';

const SECRET = 'a js test secret of at least thirty-two bytes';

/** Signs in through the runtime's server; answers the status and the IP the session recorded. */
async function signInOverSocket() {
  const app = honoApp(await createManager({ secret: SECRET, kid: 'a1', issuer: 'https://app.example' }));
  let port;
  let stop;
  if (typeof Deno === 'object') {
    const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen() {} }, app.fetch);
    port = server.addr.port;
    stop = () => server.shutdown();
  } else {
    const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: app.fetch });
    port = server.port;
    stop = () => server.stop(true);
  }
  try {
    const res = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST', headers: { 'x-user': 'peer', 'sec-fetch-site': 'same-origin' } });
    const body = await res.json();
    return { status: res.status, ip: body.session?.ip ?? null };
  } finally {
    await stop();
  }
}

console.log(JSON.stringify({ ...(await honoScenario(SECRET)), overSocket: await signInOverSocket() }));

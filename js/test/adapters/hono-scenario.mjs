// The scenario on the Hono middleware, in whatever runtime imports this (Node,
// Deno, Bun; bundled for workerd and the Edge emulator). Answers the runtime's
// name, and the scenario's checks and failures.
import { createManager } from 'tollgate';
import { COOKIE_APP_OPTIONS, runScenario } from './scenario.mjs';
import { honoApp, honoSender } from './hono-app.mjs';

export function runtimeName() {
  if (typeof EdgeRuntime === 'string') return `edge-runtime (${EdgeRuntime})`;
  if (typeof Deno === 'object') return `deno ${Deno.version.deno}`;
  if (typeof Bun === 'object') return `bun ${Bun.version}`;
  if (globalThis.navigator?.userAgent === 'Cloudflare-Workers') return 'workerd';
  if (typeof process === 'object' && process.versions?.node) return `node ${process.versions.node}`;
  return 'unknown';
}

export async function honoScenario(secret) {
  const manager = await createManager({ secret, kid: 'a1', issuer: 'https://app.example' });
  const apps = { bearer: honoApp(manager), cookie: honoApp(manager, COOKIE_APP_OPTIONS) };
  return { runtime: runtimeName(), ...(await runScenario(honoSender(apps))) };
}

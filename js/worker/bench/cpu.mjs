// CPU time per request of the built Worker in workerd (miniflare), per route
// and store. Run after scripts/build-worker.sh:  node bench/cpu.mjs [N]
//
// How: N sequential requests per route (in 5 interleaved rounds; the median
// round is reported); the CPU time the workerd process spent
// meanwhile (user + system, from /proc/<pid>/stat) divided by N. That counts
// everything workerd does for a request: HTTP parsing, miniflare's entry
// worker, the JS glue, the Wasm, storage (KV, SQLite) and, with Durable
// Objects, the second invocation inside the object. GET /healthz runs the same
// path with no tollgate work (no store, no crypto): subtracting it leaves
// tollgate's share. Wall time per request is printed too (it includes the
// client in Node and waits; the machine may be shared).

import { readdirSync, readFileSync } from 'node:fs';
import { Miniflare } from 'miniflare';
import { API_KEY, request, startWorker } from '../test/harness.mjs';

const N = Number(process.argv[2] ?? 2000);
const ROUNDS = 5;
const TICK_MS = 1000 / 100; // USER_HZ

function descendants(pid) {
  const children = new Map();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(p));
    } catch {}
  }
  const out = [];
  const walk = (p) => (children.get(p) ?? []).forEach((c) => (out.push(c), walk(c)));
  walk(pid);
  return out;
}

function workerdPids() {
  return descendants(process.pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'workerd';
    } catch {
      return false;
    }
  });
}

function cpuMs(pids) {
  let ticks = 0;
  for (const p of pids) {
    const f = readFileSync(`/proc/${p}/stat`, 'utf8').slice(readFileSync(`/proc/${p}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]); // utime, stime
  }
  return ticks * TICK_MS;
}

async function measureOnce(pids, n, fn, offset) {
  const c0 = cpuMs(pids);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(offset + i);
  return { cpu: (cpuMs(pids) - c0) / n, wall: (performance.now() - t0) / n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures every route in ROUNDS interleaved rounds of N / ROUNDS requests
 * (so drift from other load on the machine hits every route alike) and
 * answers each route's median over the rounds.
 */
async function measureAll(pids, routes) {
  const per = Math.ceil(N / ROUNDS);
  for (const [, fn] of routes) for (let i = 0; i < 50; i++) await fn(i); // warm up (JIT, objects)
  const samples = routes.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < routes.length; k++) samples[k].push(await measureOnce(pids, per, routes[k][1], 1000 + r * per));
  }
  return routes.map(([name], k) => ({
    name,
    cpu: median(samples[k].map((x) => x.cpu)),
    wall: median(samples[k].map((x) => x.wall)),
  }));
}

function print(title, rows) {
  const base = rows[0].cpu;
  console.log(`\n${title}`);
  console.log('route                      cpu ms   minus baseline   wall ms');
  for (const r of rows) {
    console.log(`${r.name.padEnd(26)} ${r.cpu.toFixed(3).padStart(6)}   ${(r.cpu - base).toFixed(3).padStart(14)}   ${r.wall.toFixed(3).padStart(7)}`);
  }
}

async function run(store, vars = {}) {
  const w = await startWorker({ store, vars });
  const pids = workerdPids();
  if (pids.length === 0) throw new Error('no workerd process found');
  const ok = (r, status) => {
    if (r.status !== status) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const users = 100;
  const seeds = [];
  for (let i = 0; i < users; i++) seeds.push(ok(await w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: `u${i}` } }), 201));
  let chain = seeds.map((s) => s.refresh_token);

  const rows = await measureAll(pids, [
    ['GET /healthz (baseline)', () => w.call('GET', '/healthz').then((r) => ok(r, 200))],
    ['verify stateless', (i) => w.call('POST', '/v1/verify', { json: { token: seeds[i % users].access_token, mode: 'stateless' } }).then((r) => ok(r, 200))],
    ['verify strict', (i) => w.call('POST', '/v1/verify', { json: { token: seeds[i % users].access_token, mode: 'strict' } }).then((r) => ok(r, 200))],
    ['create', (i) => w.call('POST', '/v1/sessions', { key: API_KEY, json: { user: `u${i % users}` } }).then((r) => ok(r, 201))],
    ['refresh', async (i) => {
      const r = ok(await w.call('POST', '/v1/refresh', { json: { refresh_token: chain[i % users] } }), 200);
      chain[i % users] = r.refresh_token;
    }],
  ]);
  await w.stop();
  const label = `${store}${vars.TOLLGATE_ALG ? ` ${vars.TOLLGATE_ALG}` : ' HS256'}`;
  print(`${label}: median of ${ROUNDS} rounds of ${Math.ceil(N / ROUNDS)} sequential requests per route, workerd CPU per request`, rows);
}

// The local KV is a simulator running in the same workerd process, so the KV
// rows include its work. This plain JS Worker does only the KV calls tollgate
// makes per route (gets with metadata, puts with metadata and a TTL, on ~600 B
// values), to show how much of a KV row is the simulator.
const KV_OPS_WORKER = `
export default { async fetch(req, env) {
  const u = new URL(req.url); const g = +u.searchParams.get('g'), p = +u.searchParams.get('p'), i = u.searchParams.get('i');
  const value = new Uint8Array(600).fill(120);
  for (let k = 0; k < g; k++) await env.KV.getWithMetadata('tollgate/s:{u:' + i + '}:' + k, 'arrayBuffer');
  for (let k = 0; k < p; k++) await env.KV.put('tollgate/s:{u:' + i + '}:' + k, value, { expirationTtl: 3600, metadata: { v: 1, e: 1 } });
  return new Response('{}');
} };`;

async function kvOps() {
  const mf = new Miniflare({ modules: true, script: KV_OPS_WORKER, kvNamespaces: ['KV'], host: '127.0.0.1', port: 0 });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const pids = workerdPids();
  const ops = (g, p) => (i) => request(url, 'GET', `/?g=${g}&p=${p}&i=u${i % 100}`);
  const rows = await measureAll(pids, [
    ['no KV call (baseline)', ops(0, 0)],
    ['1 get (verify strict)', ops(1, 0)],
    ['2 gets 1 put (refresh)', ops(2, 1)],
    ['3 gets 2 puts (create)', ops(3, 2)],
  ]);
  await mf.dispose();
  print(`KV simulator alone (plain JS Worker, the same KV calls): median of ${ROUNDS} rounds, workerd CPU per request`, rows);
}

await run('durable');
await run('kv');
await kvOps();
const pem = readFileSync(new URL('../../../tests/keys/es256.pem', import.meta.url), 'utf8');
await run('durable', { TOLLGATE_SECRET: '', TOLLGATE_ALG: 'ES256', TOLLGATE_SIGNING_KEY: pem, TOLLGATE_REFRESH_SECRET: 'bench-refresh-secret-of-32-bytes-or-more' });

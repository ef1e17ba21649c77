import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Miniflare, Log, LogLevel } from 'miniflare';
import { buildDir, API_KEY, SECRET } from './harness.mjs';
const persist = mkdtempSync(join(tmpdir(), 'tollgate-d1race-'));
const mf = new Miniflare({
  log: new Log(LogLevel.INFO),
  modules: true, modulesRoot: buildDir, scriptPath: join(buildDir, 'index.js'),
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
  compatibilityDate: '2026-04-01', host: '127.0.0.1', port: 0,
  d1Databases: ['TOLLGATE_DB'], d1Persist: join(persist, 'd1'),
  bindings: { TOLLGATE_STORE: 'd1', TOLLGATE_SECRET: SECRET, TOLLGATE_API_KEYS: API_KEY, TOLLGATE_MAX_SESSIONS_PER_USER: '3', TOLLGATE_ON_LIMIT: 'evict_oldest' },
});
const url = (await mf.ready).toString().replace(/\/$/, '');
let bad = 0;
for (let round = 0; round < 15; round++) {
  const rs = await Promise.all(Array.from({ length: +process.argv[2] }, () => fetch(url + '/v1/sessions', { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ user: `erin${round}` }) }).then(async (r) => [r.status, await r.text()])));
  const b = rs.filter(([s]) => s !== 201);
  bad += b.length;
  console.log('round', round, 'bad', b.length, b.length ? b[0][1].slice(0, 120) : '');
}
console.log('bad', bad);
await mf.dispose();

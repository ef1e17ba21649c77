// The Hono example app in workerd, on http://127.0.0.1:$PORT: worker.mjs bundled by
// esbuild with the workerd condition (as wrangler does), tollgate's .wasm loaded as a
// compiled module, run by Miniflare. TOLLGATE_* variables become the Worker's vars.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'tollgate-hono-workerd-'));
await build({
  entryPoints: [join(here, 'worker.mjs')], bundle: true, format: 'esm', platform: 'neutral',
  conditions: ['workerd', 'worker', 'browser'], mainFields: ['module', 'main'],
  outfile: join(out, 'worker.mjs'), external: ['*.wasm'], loader: { '.html': 'text' }, logLevel: 'warning',
});
// The bundle keeps `import ... from './tollgate_bg.wasm'`: put the file beside it.
const pkgDir = dirname(createRequire(join(here, 'package.json')).resolve('tollgate/package.json'));
copyFileSync(join(pkgDir, 'tollgate_bg.wasm'), join(out, 'tollgate_bg.wasm'));

const bindings = Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('TOLLGATE_')));
const mf = new Miniflare({
  modules: true, scriptPath: join(out, 'worker.mjs'), modulesRoot: out,
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }, { type: 'ESModule', include: ['**/*.mjs', '**/*.js'] }],
  compatibilityDate: '2025-01-01', bindings, host: '127.0.0.1', port: Number(process.env.PORT ?? 3000),
});
const url = await mf.ready;
console.log(`hono example app (workerd) on ${url.origin}`);

const stop = async () => {
  await mf.dispose();
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

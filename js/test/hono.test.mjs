// tollgate/hono in every runtime it claims: Node (here), Deno and Bun (their
// npm packages, on the installed tollgate), workerd (Miniflare, bundled by
// esbuild with the workerd condition as wrangler does) and the Vercel Edge
// emulator (bundled with the edge-light condition). Each runs the one
// scenario of adapters/scenario.mjs and answers its failures.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { EdgeRuntime } from 'edge-runtime';
import { Miniflare } from 'miniflare';
import { SECRET } from './helpers.mjs';
import { honoScenario } from './adapters/hono-scenario.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = dirname(createRequire(import.meta.url).resolve('tollgate/package.json'));
const root = dirname(dirname(pkgDir));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const work = mkdtempSync(join(root, '.hono-'));
after(() => rmSync(work, { recursive: true, force: true }));

function passed(result, runtime) {
  assert.match(result.runtime, runtime);
  assert.deepEqual(result.failures, [], `${result.runtime}: ${result.failures.length} of ${result.checks} checks failed`);
  assert.ok(result.checks >= 80, `${result.runtime} ran ${result.checks} checks`);
  console.log(`${result.runtime}: ${result.checks} checks passed`);
}

test('Hono in Node', async () => {
  passed(await honoScenario(SECRET), /^node /);
});

// With trustedProxy 'none' (the default) a sign-in records the connection's peer, which
// each runtime's server hands to Hono its own way (docs/cookies.md, "Client IP").
function signedInFromLoopback(result) {
  assert.deepEqual(result.overSocket, { status: 200, ip: '127.0.0.1' }, `${result.runtime}: a sign-in over a socket records the peer`);
}

test('Hono in Deno (npm deno)', () => {
  const out = execFileSync(bin('deno'), ['run', '--allow-read', '--allow-env', '--allow-net=127.0.0.1', join(here, 'adapters/hono-cli.mjs')], { cwd: root, encoding: 'utf8', env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' } });
  const result = JSON.parse(out.trim().split('\n').pop());
  passed(result, /^deno /);
  signedInFromLoopback(result);
});

test('Hono in Bun (npm bun)', () => {
  const out = execFileSync(bin('bun'), ['run', join(here, 'adapters/hono-cli.mjs')], { cwd: root, encoding: 'utf8' });
  const result = JSON.parse(out.trim().split('\n').pop());
  passed(result, /^bun /);
  signedInFromLoopback(result);
});

test('Hono in workerd (Miniflare; esbuild with the workerd condition, the .wasm a CompiledWasm module)', async () => {
  const entry = join(work, 'worker-entry.mjs');
  await import('node:fs').then((fs) =>
    fs.writeFileSync(entry, `import { honoScenario } from ${JSON.stringify(join(here, 'adapters/hono-scenario.mjs'))};
export default { async fetch(request, env) { return Response.json(await honoScenario(env.SECRET)); } };`),
  );
  await build({
    entryPoints: [entry], bundle: true, format: 'esm', platform: 'neutral', conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'], outfile: join(work, 'worker.mjs'), external: ['*.wasm'], logLevel: 'silent',
  });
  // esbuild keeps the import as written ('./tollgate_bg.wasm'): put the file beside the bundle.
  copyFileSync(join(pkgDir, 'tollgate_bg.wasm'), join(work, 'tollgate_bg.wasm'));
  const mf = new Miniflare({
    modules: true, scriptPath: join(work, 'worker.mjs'), modulesRoot: work,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }, { type: 'ESModule', include: ['**/*.mjs', '**/*.js'] }],
    compatibilityDate: '2025-01-01', bindings: { SECRET },
  });
  try {
    const res = await mf.dispatchFetch('http://localhost/');
    assert.equal(res.status, 200, await res.clone().text());
    passed(await res.json(), /^workerd$/);
  } finally {
    await mf.dispose();
  }
});

test('Hono in the Vercel Edge emulator (edge-runtime; edge-light bundle, wasm compilation off)', async () => {
  const entry = join(work, 'edge-entry.mjs');
  await import('node:fs').then((fs) =>
    fs.writeFileSync(entry, `import { honoScenario } from ${JSON.stringify(join(here, 'adapters/hono-scenario.mjs'))};
addEventListener('fetch', (event) => event.respondWith(honoScenario(${JSON.stringify(SECRET)}).then((r) => Response.json(r))));`),
  );
  const bindings = new Map();
  const out = await build({
    entryPoints: [entry], bundle: true, write: false, format: 'iife', platform: 'browser', conditions: ['edge-light'], logLevel: 'silent',
    plugins: [{
      name: 'wasm-as-binding',
      setup(b) {
        b.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({ path: join(args.resolveDir, args.path.replace(/\?module$/, '')), namespace: 'wasm-binding' }));
        b.onLoad({ filter: /.*/, namespace: 'wasm-binding' }, (args) => {
          bindings.set('wasm_tollgate', args.path);
          return { contents: 'export default globalThis.wasm_tollgate;', loader: 'js' };
        });
      },
    }],
  });
  const wasm = await WebAssembly.compile(readFileSync(bindings.get('wasm_tollgate')));
  const rt = new EdgeRuntime({ codeGeneration: { strings: false, wasm: false }, extend: (context) => Object.assign(context, { wasm_tollgate: wasm }) });
  rt.evaluate(out.outputFiles[0].text);
  const res = await rt.dispatchFetch('https://app.example/');
  passed(await res.json(), /^edge-runtime/);
});

test("pkg/README's Hono example runs as written", async () => {
  const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Hono and Express'));
  const start = section.indexOf('```js\n') + 6;
  const example = section.slice(start, section.indexOf('\n```', start));
  // The app's own authentication stands in as the x-user header.
  const prelude = `process.env.SESSION_SECRET = ${JSON.stringify(SECRET)};\nconst checkPassword = async (c) => c.req.header('x-user');\n`;
  const file = join(work, 'readme-hono.mjs');
  (await import('node:fs')).writeFileSync(file, `${prelude}${example}\nexport { app };\n`);
  const { app } = await import(file);
  const login = await app.fetch(new Request('https://app.example/login', { method: 'POST', headers: { 'x-user': 'readme', 'sec-fetch-site': 'same-origin' } }));
  assert.equal(login.status, 200);
  const { access_token: token } = await login.json();
  const me = await app.fetch(new Request('https://app.example/me', { headers: { authorization: `Bearer ${token}` } }));
  assert.equal((await me.json()).sub, 'readme');
  const feed = await app.fetch(new Request('https://app.example/feed', { headers: { authorization: `Bearer ${token}` } }));
  assert.equal(await feed.text(), 'readme');
  const refresh = await app.fetch(new Request('https://app.example/auth/refresh', { method: 'POST', headers: { 'sec-fetch-site': 'same-origin', cookie: login.headers.getSetCookie()[0].split(';')[0] } }));
  assert.equal(refresh.status, 200);
});

// The package's other entries, loaded in Node the way their runtimes load them:
// web.js (browsers, bundlers) fetches the .wasm by URL; workerd.js (Workers)
// imports it as a compiled module.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { SECRET } from './helpers.mjs';

const pkgDir = dirname(createRequire(import.meta.url).resolve('tollgate/package.json'));
const entry = (name) => pathToFileURL(join(pkgDir, name)).href;

test('package.json points each runtime at an entry that exists', async () => {
  const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
  const exp = pkg.exports['.'];
  // Order matters: a bundler takes the first condition it knows.
  assert.deepEqual(Object.keys(exp), ['types', 'workerd', 'edge-light', 'deno', 'node', 'default']);
  for (const file of [...Object.values(exp), pkg.main, pkg.types]) await readFile(join(pkgDir, file));
  for (const file of Object.values(pkg.exports['./init'])) await readFile(join(pkgDir, file));
  await readFile(join(pkgDir, 'tollgate_bg.wasm'));
});

test('web entry: fetches the module next to itself', async () => {
  const realFetch = globalThis.fetch;
  const fetched = [];
  globalThis.fetch = async (url) => {
    fetched.push(String(url));
    const body = await readFile(new URL(url));
    return new Response(body, { headers: { 'content-type': 'application/wasm' } });
  };
  try {
    const { createManager } = await import(entry('web.js'));
    const m = await createManager({ secret: SECRET, kid: 'h1' });
    const t = await m.issue('web-user');
    assert.equal((await m.verify(t.accessToken)).claims.sub, 'web-user');
    assert.equal(fetched.length, 1);
    assert.match(fetched[0], /tollgate_bg\.wasm$/);
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('workerd entry: the .wasm import is a compiled module', () => {
  const hook = new URL('./wasm-as-module-hook.mjs', import.meta.url).href;
  const script = `
    import { register } from 'node:module';
    register(${JSON.stringify(hook)});
    const { createManager } = await import(${JSON.stringify(entry('workerd.js'))});
    const m = await createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'h1' });
    const t = await m.issue('worker-user');
    console.log((await m.verify(t.accessToken)).claims.sub);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(out.trim(), 'worker-user');
});

test('init(bytes) before createManager: the entry then loads nothing itself', () => {
  // In a child process: the wasm is instantiated once per process.
  const script = `
    import { readFileSync } from 'node:fs';
    const { init, createManager } = await import(${JSON.stringify(entry('init.js'))});
    await init(readFileSync(${JSON.stringify(join(pkgDir, 'tollgate_bg.wasm'))}));
    await init(new Uint8Array(0)); // later calls answer the first one's result
    const web = await import(${JSON.stringify(entry('web.js'))});
    globalThis.fetch = () => { throw new Error('fetched'); };
    const m = await web.createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'h1' });
    const t = await m.issue('init-user');
    console.log((await m.verify(t.accessToken)).claims.sub, typeof createManager);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(out.trim(), 'init-user function');
});

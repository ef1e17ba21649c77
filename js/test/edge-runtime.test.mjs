// The package in the Vercel Edge runtime emulator (npm `edge-runtime`), bundled
// the way Vercel bundles an Edge Function: esbuild with the `edge-light`
// condition, and every `.wasm?module` import turned into a global binding that
// the host compiles (in its own realm) and hands to the runtime. The runtime is
// made with wasm code generation off, as on Vercel: compiling bytes is refused,
// only a module handed in may be instantiated.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { EdgeRuntime } from 'edge-runtime';
import { build } from 'esbuild';
import { createManager } from 'tollgate';
import { SECRET } from './helpers.mjs';

const pkgDir = dirname(createRequire(import.meta.url).resolve('tollgate/package.json'));
const root = dirname(dirname(pkgDir)); // the folder the package is installed in
const work = mkdtempSync(join(root, '.edge-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Vercel's treatment of `?module`: the import becomes a global binding named after the file's hash. */
function wasmAsBinding(bindings) {
  return {
    name: 'wasm-as-binding',
    setup(b) {
      b.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({
        path: join(args.resolveDir, args.path.replace(/\?module$/, '')),
        namespace: 'wasm-binding',
      }));
      b.onLoad({ filter: /.*/, namespace: 'wasm-binding' }, (args) => {
        const name = `wasm_${createHash('sha1').update(readFileSync(args.path)).digest('hex')}`;
        bindings.set(name, args.path);
        return { contents: `export default globalThis[${JSON.stringify(name)}];`, loader: 'js' };
      });
    },
  };
}

/** Bundles `source` (an Edge Function's module) into one script, as the runtime evaluates it. */
async function bundle(source, { conditions = [], define = {} } = {}) {
  const file = join(work, `fn-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  const bindings = new Map();
  const out = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    conditions,
    define,
    metafile: true,
    logLevel: 'silent',
    plugins: [wasmAsBinding(bindings)],
  });
  const inputs = Object.keys(out.metafile.inputs);
  return { code: out.outputFiles[0].text, bindings, inputs };
}

/** A runtime like Vercel's: wasm compiled by the host, in the host's realm, handed in as globals. */
async function runtime({ bindings = new Map(), globals = {}, wasmCodegen = false } = {}) {
  const compiled = {};
  for (const [name, path] of bindings) compiled[name] = await WebAssembly.compile(readFileSync(path));
  return new EdgeRuntime({
    codeGeneration: { strings: false, wasm: wasmCodegen },
    extend: (context) => Object.assign(context, compiled, globals),
  });
}

const FLOW = `
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));
async function handle(request) {
  try {
    const m = await manager();
    const t = await m.issue('edge-user', { claims: { role: 'reader' }, metadata: { runtime: EdgeRuntime } });
    const v = await m.verify(t.accessToken);
    const next = await m.refresh(t.refreshToken);
    const again = await m.refresh(t.refreshToken); // the race's loser, within the grace window
    const after = await m.verify(next.accessToken, 'stateless');
    let code = null;
    try { await m.verify('garbage'); } catch (e) { code = e.code; }
    return Response.json({
      sub: v.claims.sub, role: v.claims.role, runtime: v.session.metadata.runtime,
      generation: next.session.generation, sameSuccessor: again.refreshToken === next.refreshToken,
      afterSub: after.claims.sub, code,
    });
  } catch (e) {
    return Response.json({ failed: { name: e.name, code: e.code ?? null, message: e.message } }, { status: 500 });
  }
}`;

const EXPECTED = { sub: 'edge-user', role: 'reader', runtime: 'edge-runtime', generation: 1, sameSuccessor: true, afterSub: 'edge-user', code: 'token_invalid' };

async function fetchJson(rt) {
  const res = await rt.dispatchFetch('https://edge.example/');
  return { status: res.status, body: await res.json() };
}

test('edge-light bundle: issues, verifies and refreshes with the wasm handed in as a module', async () => {
  const { code, bindings, inputs } = await bundle(
    `import { createManager } from 'tollgate';
     let m; const manager = async () => (m ??= await createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'e1' }));
     ${FLOW}`,
    { conditions: ['edge-light'] },
  );
  assert.ok(inputs.some((i) => i.endsWith('tollgate/edge.js')), `edge-light picks edge.js: ${inputs.join(', ')}`);
  assert.equal(bindings.size, 1, 'the .wasm is imported with ?module');
  const rt = await runtime({ bindings });
  assert.equal(rt.evaluate(`${JSON.stringify([...bindings.keys()][0])} in globalThis`), true);
  rt.evaluate(code);
  assert.deepEqual(await fetchJson(rt), { status: 200, body: EXPECTED });
});

test('the emulator refuses to compile wasm bytes, as Vercel Edge does', async () => {
  const rt = await runtime({ globals: { BYTES: new Uint8Array(readFileSync(join(pkgDir, 'tollgate_bg.wasm'))) } });
  const refused = await rt.evaluate(`WebAssembly.compile(BYTES).then(() => null, (e) => e.name)`);
  assert.equal(refused, 'CompileError');
});

test('tollgate/init: init(module) takes a module compiled in another realm', async () => {
  const hostModule = await WebAssembly.compile(readFileSync(join(pkgDir, 'tollgate_bg.wasm')));
  const { code, inputs } = await bundle(`
    import { init, createManager } from 'tollgate/init';
    let m; const manager = async () => { await init(HOST_MODULE); return (m ??= await createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'e1' })); };
    ${FLOW}`);
  assert.ok(!inputs.some((i) => i.endsWith('.wasm')), 'tollgate/init references no .wasm');
  const rt = await runtime({ globals: { HOST_MODULE: hostModule } });
  // The module really is of another realm: the check wasm-bindgen's initSync makes fails.
  assert.equal(rt.evaluate('HOST_MODULE instanceof WebAssembly.Module'), false);
  rt.evaluate(code);
  assert.deepEqual(await fetchJson(rt), { status: 200, body: EXPECTED });
});

test('tollgate/init: createManager before init says what to do; a bad source is refused', async () => {
  const { code } = await bundle(`
    import { init, createManager } from 'tollgate/init';
    const fail = (p) => p.then(() => null, (e) => ({ name: e.name, code: e.code, status: e.status, message: e.message }));
    globalThis.result = (async () => ({
      early: await fail(createManager({ secret: ${JSON.stringify(SECRET)} })),
      bad: await fail(init(42)),
    }))();`);
  const rt = await runtime();
  rt.evaluate(code);
  const { early, bad } = await rt.evaluate('result');
  assert.equal(early.name, 'TollgateError');
  assert.equal(early.code, 'config_invalid');
  assert.match(early.message, /init\(/);
  assert.equal(bad.code, 'config_invalid');
  assert.match(bad.message, /WebAssembly\.Module/);
});

test('plain esbuild bundle (no edge-light condition): no "Invalid URL", and init(bytes) makes it work', async () => {
  const { code, inputs } = await bundle(`
    import { init, createManager } from 'tollgate';
    const fail = (p) => p.then(() => null, (e) => ({ name: e.name, code: e.code, message: e.message }));
    let m;
    globalThis.early = fail(createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'e1' }));
    const manager = async () => { await early; await init(BYTES); return (m ??= await createManager({ secret: ${JSON.stringify(SECRET)}, kid: 'e1' })); };
    ${FLOW}`);
  assert.ok(inputs.some((i) => i.endsWith('tollgate/web.js')), `the default condition picks web.js: ${inputs.join(', ')}`);
  // Bytes must be compiled here: a plain bundle is not Vercel's, so this runtime allows it.
  const rt = await runtime({ wasmCodegen: true, globals: { BYTES: new Uint8Array(readFileSync(join(pkgDir, 'tollgate_bg.wasm'))).buffer } });
  rt.evaluate(code);
  const early = await rt.evaluate('early');
  assert.equal(early.code, 'config_invalid', JSON.stringify(early));
  assert.doesNotMatch(early.message, /Invalid URL/);
  assert.match(early.message, /edge-light/);
  assert.deepEqual(await fetchJson(rt), { status: 200, body: EXPECTED });
});

test("pkg/README's Vercel Edge recipe runs as written", async () => {
  const readme = readFileSync(join(pkgDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Vercel Edge Functions'));
  const start = section.indexOf('```js\n') + 6;
  writeFileSync(join(work, 'recipe.mjs'), section.slice(start, section.indexOf('\n```', start)));
  const { code, bindings } = await bundle(
    `import handler from './recipe.mjs';
     addEventListener('fetch', (event) => event.respondWith(handler(event.request)));`,
    { conditions: ['edge-light'], define: { 'process.env.SESSION_SECRET': JSON.stringify(SECRET) } },
  );
  const rt = await runtime({ bindings });
  rt.evaluate(code);
  // A token issued in Node, by the same secret and issuer, verified at the edge.
  const node = await createManager({ secret: SECRET, issuer: 'https://auth.example' });
  const { accessToken } = await node.issue('recipe-user');
  const ok = await rt.dispatchFetch('https://edge.example/api/me', { headers: { authorization: `Bearer ${accessToken}` } });
  assert.deepEqual([ok.status, await ok.json()], [200, { user: 'recipe-user' }]);
  const bad = await rt.dispatchFetch('https://edge.example/api/me', { headers: { authorization: 'Bearer forged' } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error.code, 'token_invalid');
});

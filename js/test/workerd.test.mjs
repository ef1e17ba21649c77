// The package in a real Cloudflare Workers runtime (workerd, through Miniflare):
// the workerd entry imports the .wasm as a compiled module, WebCrypto signs
// ES256 and EdDSA there, and errors carry their codes.
//
// The worker imports the entry by path: wrangler's bundler resolves the bare
// `tollgate` to it through the "workerd" export condition (entries.test.mjs
// checks package.json maps it); Miniflare alone does not resolve packages.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { Miniflare } from 'miniflare';
import { SECRET } from './helpers.mjs';

const pkgDir = dirname(createRequire(import.meta.url).resolve('tollgate/package.json'));
const root = dirname(dirname(pkgDir)); // the folder the package is installed in

const WORKER = (entry) => `
import { createManager } from './${entry}';
const managers = new Map();
async function manager(env, alg) {
  if (!managers.has(alg)) {
    const key = alg === 'HS256' ? { kid: 'h1', secret: env.SECRET } : { kid: 'a1', alg, signingKey: env[alg], refreshSecret: env.SECRET };
    managers.set(alg, await createManager({ ...key, issuer: 'worker' }));
  }
  return managers.get(alg);
}
export default {
  async fetch(request, env) {
    const alg = new URL(request.url).searchParams.get('alg');
    const m = await manager(env, alg);
    const t = await m.issue('worker-user', { metadata: { edge: true } });
    const v = await m.verify(t.accessToken, 'strict');
    const next = await m.refresh(t.refreshToken);
    let code = null;
    try { await m.verify('garbage'); } catch (e) { code = e.code; }
    return Response.json({ sub: v.claims.sub, edge: v.session.metadata.edge, generation: next.session.generation, code, jwks: m.jwks().keys.length });
  },
};`;

test('workerd runs the package: HS256, ES256 and EdDSA', async () => {
  const dir = mkdtempSync(join(root, '.workerd-'));
  const entry = relative(dir, join(pkgDir, 'workerd.js')).split('\\').join('/');
  writeFileSync(join(dir, 'worker.mjs'), WORKER(entry));
  const pem = (type, opts) => generateKeyPairSync(type, opts).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, 'worker.mjs'),
    modulesRoot: root,
    modulesRules: [
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
      { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
    ],
    compatibilityDate: '2025-01-01',
    bindings: { SECRET, ES256: pem('ec', { namedCurve: 'P-256' }), EdDSA: pem('ed25519') },
  });
  try {
    for (const alg of ['HS256', 'ES256', 'EdDSA']) {
      const res = await mf.dispatchFetch(`http://localhost/?alg=${alg}`);
      assert.equal(res.status, 200, await res.clone().text());
      assert.deepEqual(await res.json(), { sub: 'worker-user', edge: true, generation: 1, code: 'token_invalid', jwks: alg === 'HS256' ? 0 : 1 }, alg);
    }
  } finally {
    await mf.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Runs the built Worker (js/worker/build, from scripts/build-worker.sh) in
// workerd through miniflare, with real local KV, SQLite-backed Durable Object
// and D1 bindings, and talks to it over HTTP.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

const here = dirname(fileURLToPath(import.meta.url));
export const buildDir = join(here, '..', 'build');
/** Test-only Worker entries (see startWorker's `entry`). */
export const entriesDir = join(here, 'entries');

export const SECRET = 'worker-test-secret-of-at-least-32-bytes!';
export const API_KEY = 'test-api-key-0123456789';
export const OTHER_API_KEY = 'previous-api-key-abcdef';

/**
 * Starts the Worker (from `build`, the Worker build by default). `vars` are merged over the
 * defaults (store, secret, API keys). `entry`: a test-only module (test/entries/) run as the
 * Worker's main module in front of the build's, which it imports as './index.js'.
 * Answers { url, call, mf, persist, stop }.
 */
export async function startWorker({ store, vars = {}, build = buildDir, entry }) {
  const persist = mkdtempSync(join(tmpdir(), 'tollgate-worker-'));
  let root = build;
  let main = join(build, 'index.js');
  if (entry) {
    // A copy of the build with the entry beside it: the deployable build stays as it was built.
    root = join(persist, 'build');
    cpSync(build, root, { recursive: true });
    main = join(root, 'test-entry.mjs');
    copyFileSync(entry, main);
  }
  const mf = new Miniflare({
    modules: true,
    modulesRoot: root,
    scriptPath: main,
    // The entry imports the build's index.js, an ES module like every .js of the build.
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }, ...(entry ? [{ type: 'ESModule', include: ['**/*.js'] }] : [])],
    compatibilityDate: '2026-04-01',
    host: '127.0.0.1',
    port: 0,
    kvNamespaces: ['TOLLGATE_KV'],
    kvPersist: join(persist, 'kv'),
    durableObjects: { TOLLGATE_USERS: { className: 'UserSessions', useSQLite: true } },
    durableObjectsPersist: join(persist, 'do'),
    d1Databases: ['TOLLGATE_DB'],
    d1Persist: join(persist, 'd1'),
    bindings: {
      TOLLGATE_STORE: store,
      TOLLGATE_SECRET: SECRET,
      TOLLGATE_API_KEYS: `${API_KEY},${OTHER_API_KEY}`,
      TOLLGATE_ISSUER: 'https://auth.test',
      ...vars,
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const call = (method, path, opts = {}) => request(url, method, path, opts);
  const stop = async () => {
    await mf.dispose();
    rmSync(persist, { recursive: true, force: true });
  };
  return { url, call, mf, persist, stop };
}

/**
 * One HTTP request. opts: { json, body, headers, key (API key), bearer }.
 * Answers { status, body (parsed JSON or null), headers }.
 */
export async function request(url, method, path, { json, body, headers = {}, key, bearer } = {}) {
  const h = { ...headers };
  if (key !== undefined) h['x-api-key'] = key;
  if (bearer !== undefined) h.authorization = `Bearer ${bearer}`;
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    h['content-type'] ??= 'application/json';
  }
  const init = { method, headers: h, body: payload };
  if (payload instanceof ReadableStream) init.duplex = 'half';
  const res = await fetch(url + path, init);
  const text = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed, headers: res.headers };
}

export const code = (res) => res.body?.error?.code ?? `<status ${res.status}, no error code>`;

/** Every KV entry: key, value and metadata, sorted. */
export async function kvSnapshot(mf) {
  const kv = await mf.getKVNamespace('TOLLGATE_KV');
  const out = [];
  let cursor;
  do {
    const page = await kv.list({ cursor });
    for (const k of page.keys) {
      const { value, metadata } = await kv.getWithMetadata(k.name, 'text');
      out.push([k.name, value, JSON.stringify(metadata)]);
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out.sort();
}

/** Every Durable Object database file (and its WAL) under the persist directory, with a hash of its bytes. */
export function doSnapshot(persist) {
  const root = join(persist, 'do');
  const out = [];
  const walk = (dir) => {
    let entries = [];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of entries) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      // -shm is SQLite's shared-memory index of the WAL: readers update it too.
      else if (!name.endsWith('-shm')) out.push([relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex')]);
    }
  };
  walk(root);
  return out.sort();
}

/** Every row of the D1 store's tables, sorted (values as hex). */
export async function d1Snapshot(mf) {
  const db = await mf.getD1Database('TOLLGATE_DB');
  const out = [];
  for (const table of ['tollgate_kv', 'tollgate_versions']) {
    const { results } = await db.prepare(`SELECT * FROM ${table}`).all();
    for (const row of results) out.push(JSON.stringify([table, row]));
  }
  return out.sort();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The bad requests every store must refuse with a coded 4xx, changing nothing. */
export function badRequests(t) {
  const key = API_KEY;
  const big = { user: 'dave', metadata: 'x'.repeat(70 * 1024) };
  const chunked = () =>
    new ReadableStream({
      start(c) {
        for (let i = 0; i < 80; i++) c.enqueue(new TextEncoder().encode('x'.repeat(1024)));
        c.close();
      },
    });
  return [
    ['GET', '/nope', {}, 404, 'not_found'],
    ['GET', '/v1/sessions/x/y/z', {}, 404, 'not_found'],
    ['GET', '/v1/sessions', { key }, 405, 'method_not_allowed'],
    ['PUT', '/v1/users/dave/sessions', { key }, 405, 'method_not_allowed'],
    ['POST', '/healthz', {}, 405, 'method_not_allowed'],
    ['POST', '/v1/sessions', { json: { user: 'dave' } }, 401, 'unauthorized'],
    ['POST', '/v1/sessions', { key: 'wrong-key-wrong-key', json: { user: 'dave' } }, 401, 'unauthorized'],
    ['POST', '/v1/sessions', { key: '', json: { user: 'dave' } }, 401, 'unauthorized'],
    ['POST', '/v1/sessions', { key, json: {} }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, json: { user: 42 } }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, json: { user: 'dave', extra: 1 } }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, json: { user: '' } }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, json: { user: 'dave', claims: { sub: 'root' } } }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, json: big }, 413, 'payload_too_large'],
    ['POST', '/v1/sessions', { key, body: chunked(), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large'],
    ['POST', '/v1/sessions', { key, body: '{not json', headers: { 'content-type': 'application/json' } }, 400, 'bad_request'],
    ['POST', '/v1/sessions', { key, body: '{"user":"dave"}', headers: { 'content-type': 'text/plain' } }, 415, 'unsupported_media_type'],
    ['POST', '/v1/verify', { body: '{"token":"x"}', headers: { 'content-type': 'text/plain' } }, 415, 'unsupported_media_type'],
    ['POST', '/v1/verify', { json: { token: 'garbage' } }, 401, 'token_invalid'],
    ['POST', '/v1/verify', { json: { token: 'garbage', mode: 'strict' } }, 401, 'token_invalid'],
    ['POST', '/v1/verify', { json: { token: t.access_token, mode: 'paranoid' } }, 400, 'bad_request'],
    ['POST', '/v1/refresh', { json: { refresh_token: 'tgr_garbage.x' } }, 401, 'token_invalid'],
    ['POST', '/v1/refresh', { json: { token: 'x' } }, 400, 'bad_request'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', { key }, 400, 'bad_request'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA?user=dave', { key }, 404, 'session_not_found'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA?user=dave', { key: 'wrong-key-wrong-key' }, 401, 'unauthorized'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', {}, 401, 'unauthorized'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', { headers: { authorization: 'Basic abc' } }, 401, 'unauthorized'],
    ['DELETE', '/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA', { bearer: 'not.a.token' }, 401, 'token_invalid'],
    ['GET', '/v1/users/dave/sessions', {}, 401, 'unauthorized'],
    ['GET', '/v1/users/dave/sessions', { key: 'wrong-key-wrong-key' }, 401, 'unauthorized'],
    ['GET', '/v1/users/someone-else/sessions', { bearer: t.access_token }, 403, 'forbidden'],
    ['GET', '/v1/users/%zz/sessions', { key }, 400, 'bad_request'],
    ['GET', '/v1/users/%C3/sessions', { key }, 400, 'bad_request'],
    ['DELETE', '/v1/users/dave/sessions?keep=current', { key }, 400, 'bad_request'],
    ['DELETE', '/v1/users/dave/sessions?keep=not-a-session', { key }, 400, 'bad_request'],
    ['DELETE', '/v1/users/dave/sessions?kep=current', { key }, 400, 'bad_request'],
    ['DELETE', '/v1/users/dave/sessions?kep=current', { bearer: t.access_token }, 400, 'bad_request'],
  ];
}

/** The hostile user ids shared with the Rust tests (tests/support/hostile_user_ids.json). */
export const hostileUserIds = JSON.parse(readFileSync(join(here, '..', '..', '..', 'tests', 'support', 'hostile_user_ids.json'), 'utf8')).ids;

/**
 * Every route that takes a user, for each hostile id (with `suffix` appended),
 * each percent-encoded in paths and queries as encodeURIComponent does; then a
 * `+` sent as it is, which must never be read as a space. The same walk as
 * tests/support/user_routes.rs runs on `tollgate serve`.
 */
export async function everyUserRouteWithHostileIds(w, suffix = '') {
  const service = (method, path, json) => w.call(method, path, { key: API_KEY, json });
  const create = async (user) => {
    const r = await service('POST', '/v1/sessions', { user });
    assert.equal(r.status, 201, `create for ${JSON.stringify(user)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.session.user, user);
    return r.body;
  };
  const strict = (t) => w.call('POST', '/v1/verify', { json: { token: t.access_token, mode: 'strict' } });
  const listed = async (path) => {
    const r = await service('GET', path);
    assert.equal(r.status, 200, `GET ${path}: ${JSON.stringify(r.body)}`);
    return r.body.sessions.map((s) => s.sid);
  };

  for (const id of hostileUserIds) {
    const user = id + suffix;
    const what = JSON.stringify(user);
    const enc = encodeURIComponent(user);
    const sessions = `/v1/users/${enc}/sessions`;
    const other = encodeURIComponent(`${user}-other`);
    const a = await create(user);
    let r = await strict(a);
    assert.deepEqual([r.status, r.body.claims?.sub, r.body.session?.user], [200, user, user], `${what}: ${JSON.stringify(r.body)}`);
    r = await w.call('POST', '/v1/refresh', { json: { refresh_token: a.refresh_token } });
    assert.deepEqual([r.status, r.body.session?.user], [200, user], `refresh for ${what}: ${JSON.stringify(r.body)}`);
    const a2 = r.body;
    const b = await create(user);

    assert.deepEqual((await listed(sessions)).sort(), [a.session.sid, b.session.sid].sort(), `the service lists ${what}'s sessions`);
    r = await w.call('GET', sessions, { bearer: a2.access_token });
    assert.deepEqual([r.status, r.body.sessions?.length], [200, 2], `the user lists their own: ${JSON.stringify(r.body)}`);
    r = await w.call('GET', `/v1/users/${other}/sessions`, { bearer: a2.access_token });
    assert.deepEqual([r.status, code(r)], [403, 'forbidden'], 'not someone else\'s');

    r = await service('DELETE', `/v1/sessions/${b.session.sid}?user=${enc}`);
    assert.equal(r.status, 200, `revoke one of ${what}'s: ${JSON.stringify(r.body)}`);
    assert.equal(code(await strict(b)), 'session_revoked');
    r = await w.call('DELETE', `/v1/sessions/${b.session.sid}?user=${other}`, { bearer: a2.access_token });
    assert.deepEqual([r.status, code(r)], [403, 'forbidden'], `a user names only themselves: ${JSON.stringify(r.body)}`);

    const c = await create(user);
    r = await w.call('DELETE', `${sessions}?keep=current`, { bearer: a2.access_token });
    assert.deepEqual([r.status, r.body.revoked], [200, 1], `revoke all but current for ${what}: ${JSON.stringify(r.body)}`);
    assert.equal(code(await strict(c)), 'session_revoked');
    assert.equal((await strict(a2)).status, 200, 'the current session is kept');

    r = await service('DELETE', sessions);
    assert.deepEqual([r.status, r.body.revoked], [200, 1], `revoke all for ${what}: ${JSON.stringify(r.body)}`);
    assert.equal(code(await strict(a2)), 'session_revoked');
    assert.deepEqual(await listed(sessions), []);
  }

  // A `+` sent as it is stays a `+`: alice+x and "alice x" are two users.
  const plus = `alice+x@example.com${suffix}`;
  const space = `alice x@example.com${suffix}`;
  const p = await create(plus);
  const s = await create(space);
  const raw = `/v1/users/${plus}/sessions`;
  assert.deepEqual(await listed(raw), [p.session.sid], `GET ${raw} lists only ${plus}'s session`);
  assert.deepEqual(await listed(`/v1/users/${encodeURIComponent(space)}/sessions`), [s.session.sid]);
  let r = await service('DELETE', `/v1/sessions/${s.session.sid}?user=${plus}`);
  assert.deepEqual([r.status, code(r)], [404, 'session_not_found'], `"${space}"'s session is not ${plus}'s`);
  r = await service('DELETE', raw);
  assert.deepEqual([r.status, r.body.revoked], [200, 1], `DELETE ${raw} revokes ${plus}'s session: ${JSON.stringify(r.body)}`);
  assert.equal(code(await strict(p)), 'session_revoked');
  assert.equal((await strict(s)).status, 200, `"${space}" keeps their session`);
  r = await service('DELETE', `/v1/sessions/${s.session.sid}?user=${encodeURIComponent(space)}`);
  assert.equal(r.status, 200);
  assert.equal(code(await strict(s)), 'session_revoked');
}

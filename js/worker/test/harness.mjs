// Runs the built Worker (js/worker/build, from scripts/build-worker.sh) in
// workerd through miniflare, with real local KV, SQLite-backed Durable Object
// and D1 bindings, and talks to it over HTTP.

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

const here = dirname(fileURLToPath(import.meta.url));
export const buildDir = join(here, '..', 'build');

export const SECRET = 'worker-test-secret-of-at-least-32-bytes!';
export const API_KEY = 'test-api-key-0123456789';
export const OTHER_API_KEY = 'previous-api-key-abcdef';

/**
 * Starts the Worker. `vars` are merged over the defaults (store, secret, API keys).
 * Answers { url, call, mf, persist, stop }.
 */
export async function startWorker({ store, vars = {} }) {
  const persist = mkdtempSync(join(tmpdir(), 'tollgate-worker-'));
  const mf = new Miniflare({
    modules: true,
    modulesRoot: buildDir,
    scriptPath: join(buildDir, 'index.js'),
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
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
    ['DELETE', '/v1/users/dave/sessions?keep=current', { key }, 400, 'bad_request'],
  ];
}

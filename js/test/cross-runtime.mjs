// Rust and Node take turns on the same sessions in one Redis: the npm package
// (installed from its tarball) here, the Rust crate in examples/cross_runtime.rs,
// one step per process. scripts/cross-runtime.sh starts the Redis (a single
// server, then a Cluster) and runs this file once for each; every step and
// its outcome is printed.
//
// CROSS_TOPOLOGY   single | cluster
// CROSS_REDIS      host:port of the server, or the Cluster's nodes, comma-separated
// CROSS_RUNTIME_BIN  the built example;  CROSS_SECRET  the shared HS256 secret
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { createManager } from 'tollgate';
import { redisStore } from 'tollgate/redis-store';
import { user } from './helpers.mjs';

const need = (name) => process.env[name] ?? assert.fail(`set ${name} (scripts/cross-runtime.sh does)`);
const topology = need('CROSS_TOPOLOGY');
const nodes = need('CROSS_REDIS').split(',').map((a) => ({ host: a.split(':')[0], port: Number(a.split(':')[1]) }));
const bin = need('CROSS_RUNTIME_BIN');
const secret = need('CROSS_SECRET');
const prefix = 'xrt:';
const rustEnv = {
  ...process.env,
  CROSS_PREFIX: prefix,
  ...(topology === 'cluster' ? { CROSS_REDIS_CLUSTER: need('CROSS_REDIS') } : { CROSS_REDIS_URL: `redis://${need('CROSS_REDIS')}/0` }),
};

const clients = [];
function connect() {
  const c = topology === 'cluster' ? new Redis.Cluster(nodes) : new Redis(nodes[0]);
  clients.push(c);
  return c;
}
let node; // the Node process's manager
let client;
// The Node manager's reads and commits, counted around the package's own transport.
const sent = { mget: 0, commit: 0 };
before(async () => {
  client = connect();
  const transport = redisStore(client, { prefix });
  const counted = {
    ...transport,
    mget: (keys) => (sent.mget++, transport.mget(keys)),
    commit: (keys, args) => (sent.commit++, transport.commit(keys, args)),
  };
  node = await createManager({ secret, kid: 'x1', issuer: 'cross-runtime', audience: 'app', store: counted });
});
after(() => Promise.all(clients.map((c) => c.quit())));

/** One step in a Rust process: its JSON answer. */
async function rust(...args) {
  const { stdout } = await promisify(execFile)(bin, args, { env: rustEnv, maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}

/** One step in this process, in the same shape as the Rust answers. */
async function nodeStep(promise) {
  try {
    const v = await promise;
    return v?.refreshToken ? { ok: true, refreshToken: v.refreshToken, accessToken: v.accessToken, sid: v.session.sid, generation: v.session.generation } : { ok: true, value: v };
  } catch (e) {
    if (!e.code) throw e;
    return { ok: false, code: e.code };
  }
}

const say = (line) => console.log(`[${topology}] ${line}`);
const outcome = (r) => (r.ok ? `ok${r.generation !== undefined ? ` (generation ${r.generation})` : ''}` : r.code);

async function step(n, who, what, run, want = 'ok') {
  const r = await run();
  say(`${n}. ${who} ${what}: ${outcome(r)}`);
  assert.equal(r.ok ? 'ok' : r.code, want, `${who} ${what}`);
  return r;
}

describe(`Rust and Node on one Redis (${topology})`, () => {
  test('Rust issues, Node verifies and refreshes, Rust verifies and refreshes, Node revokes, Rust sees it revoked', async () => {
    const u = user('rust-first');
    const t0 = await step(1, 'Rust', 'issues', () => rust('issue', u));
    await step(2, 'Node', 'strict-verifies it', () => nodeStep(node.verify(t0.accessToken, 'strict')));
    const t1 = await step(3, 'Node', 'refreshes it', () => nodeStep(node.refresh(t0.refreshToken)));
    await step(4, 'Rust', 'strict-verifies the successor', () => rust('verify', t1.accessToken));
    const t2 = await step(5, 'Rust', 'refreshes the successor', () => rust('refresh', t1.refreshToken));
    assert.equal(t2.generation, 2);
    await step(6, 'Node', 'revokes the session', () => nodeStep(node.revoke(u, t2.sid)));
    await step(7, 'Rust', 'strict-verifies after the revoke', () => rust('verify', t2.accessToken), 'session_revoked');
  });

  test('Node issues, Rust verifies and refreshes, Node verifies and refreshes, Rust revokes, Node sees it revoked', async () => {
    const u = user('node-first');
    const t0 = await step(1, 'Node', 'issues', () => nodeStep(node.issue(u)));
    await step(2, 'Rust', 'strict-verifies it', () => rust('verify', t0.accessToken));
    const t1 = await step(3, 'Rust', 'refreshes it', () => rust('refresh', t0.refreshToken));
    await step(4, 'Node', 'strict-verifies the successor', () => nodeStep(node.verify(t1.accessToken, 'strict')));
    const t2 = await step(5, 'Node', 'refreshes the successor', () => nodeStep(node.refresh(t1.refreshToken)));
    assert.equal(t2.generation, 2);
    await step(6, 'Rust', 'revokes the session', () => rust('revoke', u, t2.sid));
    await step(7, 'Node', 'strict-verifies after the revoke', () => nodeStep(node.verify(t2.accessToken, 'strict')), 'session_revoked');
  });

  test('revokes in one commit take the entry out of the index in Redis: Node from its memory, Rust from a read; each reads what the other left', async () => {
    const u = user('revoke-index');
    const a = await step(1, 'Node', 'issues a', () => nodeStep(node.issue(u)));
    const b = await step(2, 'Node', 'issues b', () => nodeStep(node.issue(u)));
    const c = await step(3, 'Rust', 'issues c', () => rust('issue', u));
    const before = await rust('index', u);
    say(`4. Rust reads the stored index: ${before.sids.length} entries`);
    assert.deepEqual(before.sids, [a.sid, b.sid, c.sid]);
    // Node wrote a and remembers it: its revoke is one commit, the removal done by the script.
    let was = { ...sent };
    await step(5, 'Node', 'revokes a (its own)', () => nodeStep(node.revoke(u, a.sid)));
    assert.deepEqual([sent.mget - was.mget, sent.commit - was.commit], [0, 1], 'one commit, no read');
    // Rust never saw b: it reads the record, then commits with the removal.
    await step(6, 'Rust', 'revokes b (Node issued it)', () => rust('revoke', u, b.sid));
    const after = await rust('index', u);
    say(`7. Rust reads the stored index: ${JSON.stringify(after.sids)}`);
    assert.deepEqual(after.sids, [c.sid]);
    was = { ...sent };
    await step(8, 'Node', 'revokes c (Rust issued it)', () => nodeStep(node.revoke(u, c.sid)));
    assert.deepEqual([sent.mget - was.mget, sent.commit - was.commit], [1, 1], 'a read of the record, then the commit');
    const last = await rust('index', u);
    say(`9. the stored index after the last revoke: ${last.present ? 'present' : 'gone'}`);
    assert.equal(last.present, false, 'an emptied index is deleted');
    for (const [n, t] of [[10, a], [11, b], [12, c]]) {
      await step(n, 'Node', `strict-verifies ${t === a ? 'a' : t === b ? 'b' : 'c'}`, () => nodeStep(node.verify(t.accessToken, 'strict')), 'session_revoked');
    }
    assert.deepEqual((await node.list(u)).map((s) => s.sid), []);
  });

  test('one refresh token refreshed at once by 50 Rust tasks and 50 Node promises: one successor for all', async () => {
    const u = user('race');
    const t0 = await step(1, 'Node', 'issues', () => nodeStep(node.issue(u)));
    // An instant far enough ahead for the Rust process to start and connect.
    const at = Date.now() + 2000;
    const rustRace = rust('race', t0.refreshToken, '50', String(at));
    await new Promise((r) => setTimeout(r, at - Date.now()));
    const nodeStarted = Date.now();
    const nodeResults = await Promise.all(Array.from({ length: 50 }, () => nodeStep(node.refresh(t0.refreshToken))));
    const rustAnswer = await rustRace;
    const all = [...rustAnswer.results, ...nodeResults];
    const failures = all.filter((r) => !r.ok).map((r) => r.code);
    const successors = new Set(all.filter((r) => r.ok).map((r) => r.refreshToken));
    say(
      `2. 50 Rust tasks (started at ${rustAnswer.startedAt}) and 50 Node promises (started at ${nodeStarted}) refresh it: ` +
        `${all.length - failures.length} ok, ${failures.length} failed${failures.length ? ` (${[...new Set(failures)]})` : ''}, ${successors.size} distinct successor(s)`,
    );
    assert.equal(Math.abs(rustAnswer.startedAt - nodeStarted) < 500, true, 'both sides started together');
    assert.deepEqual(failures, []);
    assert.equal(successors.size, 1, 'every caller got the same successor');
    const [successor] = successors;
    const t2 = await step(3, 'Rust', 'refreshes the successor', () => rust('refresh', successor));
    await step(4, 'Node', 'strict-verifies the next access token', () => nodeStep(node.verify(t2.accessToken, 'strict')));
    const listed = await rust('list', u);
    say(`5. Rust lists the user's sessions: ${listed.sids.length}`);
    assert.deepEqual(listed.sids, [t0.sid]);
  });

  test('devices: Rust issues with a client, Node issues with another; each lists both with the same ip, user agent and current', async () => {
    const u = user('devices');
    const laptop = ['2001:DB8::7', 'Mozilla/5.0 (X11; Linux) Firefox/140'];
    const r = await step(1, 'Rust', 'issues from a laptop', () => rust('issue-from', u, ...laptop));
    const n = await step(2, 'Node', 'issues from a phone', () => nodeStep(node.issue(u, { client: { ip: '198.51.100.4', userAgent: 'Safari/17 iPhone' } })));
    const fromNode = await node.list(u, { current: n.sid });
    const fromRust = (await rust('list-marking', u, n.sid)).sessions;
    say(`3. Node lists: ${fromNode.map((s) => `${s.ip} ${s.userAgent} current=${s.current}`).join('; ')}`);
    say(`4. Rust lists: ${fromRust.map((s) => `${s.ip} ${s.user_agent} current=${s.current}`).join('; ')}`);
    const want = [[r.sid, '2001:db8::7', laptop[1], false], [n.sid, '198.51.100.4', 'Safari/17 iPhone', true]];
    assert.deepEqual(fromNode.map((s) => [s.sid, s.ip, s.userAgent, s.current]), want);
    assert.deepEqual(fromRust.map((s) => [s.sid, s.ip, s.user_agent, s.current]), want);
    // A Node refresh from another client moves the Rust-issued session's device; Rust sees it.
    await step(5, 'Node', 'refreshes the Rust session from a tablet', () => nodeStep(node.refresh(r.refreshToken, { client: { ip: '192.0.2.9', userAgent: 'Tablet/2' } })));
    const after = (await rust('list-marking', u, r.sid)).sessions;
    say(`6. Rust lists: ${after.map((s) => `${s.ip} ${s.user_agent} current=${s.current}`).join('; ')}`);
    assert.deepEqual(after.map((s) => [s.ip, s.user_agent, s.current]), [['192.0.2.9', 'Tablet/2', true], ['198.51.100.4', 'Safari/17 iPhone', false]]);
  });

  test('the npm store: a commit whose reply is lost after it ran is sent again by ioredis and answered committed', async () => {
    // The commit's node sleeps (DEBUG SLEEP) while the commit and then a CLIENT KILL
    // of the store's connection reach it: it runs the commit, then the kill, before
    // writing any reply; ioredis sends the commit again on a new connection.
    const store = await ready(connect());
    const transport = redisStore(store, { prefix });
    const u = user('lost-reply');
    // What loses the reply is set up before the sign-in, so a failure here is the test's own:
    // the node of the user's keys (every key of a user carries the hash tag `{u:<user>}`, so
    // the tag alone names its slot), a connection that holds it asleep, one that kills the
    // store's connection, and that connection's id.
    const at = await nodeOf(store, `{u:${u}}`);
    const [sleeper, killer] = [new Redis(at), new Redis(at)];
    // Closed whatever happens: an open connection would keep the test process alive.
    try {
      await Promise.all([sleeper.ping(), killer.ping()]);
      const id = await clientId(store, `{u:${u}}`);
      const before = await scriptRuns(killer);
      let armed = false;
      let ran = 0;
      const wrapped = {
        ...transport,
        async commit(keys, args) {
          if (!armed) return transport.commit(keys, args);
          armed = false;
          sleeper.call('DEBUG', 'SLEEP', '1.5').catch(() => {});
          await new Promise((r) => setTimeout(r, 150));
          const answer = transport.commit(keys, args);
          await new Promise((r) => setTimeout(r, 300));
          await killer.client('KILL', 'ID', id);
          const result = await answer;
          ran = (await scriptRuns(killer)) - before;
          return result;
        },
      };
      const m = await createManager({ secret, kid: 'x1', issuer: 'cross-runtime', audience: 'app', store: wrapped });
      armed = true;
      const t = await nodeStep(m.issue(u));
      say(`the npm store's commit reply lost after it ran: the script ran ${ran} times; issue: ${outcome(t)}; sessions listed: ${(await m.list(u)).length}`);
      assert.equal(t.ok, true);
      assert.ok(ran >= 2, `ioredis did not send the commit again (it ran ${ran} times): this run proves nothing`);
      assert.equal((await m.list(u)).length, 1, 'no orphan session');
      await m.verify(t.accessToken, 'strict');
    } finally {
      sleeper.disconnect();
      killer.disconnect();
    }
  });
});

/** `c` once it is ready: a Cluster client has then read the slots and holds its connections,
 *  so the test's own commands do not race the ones it opens and closes while starting. */
async function ready(c) {
  if (c.status === 'ready') return c;
  await new Promise((resolve, reject) => {
    c.once('ready', resolve);
    c.once('end', () => reject(new Error('the Redis client ended before it was ready')));
  });
  return c;
}

/** The node that serves `key`: the server itself, or the Cluster master of its slot. */
async function nodeOf(c, key) {
  if (topology !== 'cluster') return nodes[0];
  const slot = await c.cluster('KEYSLOT', key);
  const ranges = await c.cluster('SLOTS');
  const [, , [host, port]] = ranges.find(([start, end]) => slot >= start && slot <= end);
  return { host, port };
}

/** The server-side id of the connection `c` uses for `key`. */
async function clientId(c, key) {
  if (topology !== 'cluster') return c.client('ID');
  const { host, port } = await nodeOf(c, key);
  // A Cluster client holds a connection to a master once it has read the slots; one made
  // just before may not yet, so wait for it, and say what it holds if it never does.
  const find = () => c.nodes('master').find((n) => n.options.host === host && n.options.port === port);
  for (let i = 0; i < 100 && !find(); i++) await new Promise((r) => setTimeout(r, 20));
  const conn = find();
  if (!conn) {
    const held = c.nodes('master').map((n) => `${n.options.host}:${n.options.port}`).join(', ');
    throw new Error(`the Cluster client holds no connection to ${host}:${port} after 2 s (it holds: ${held})`);
  }
  return conn.client('ID');
}

/** Runs of the commit script on the server of `c` so far (ioredis sends EVAL after NOSCRIPT). */
async function scriptRuns(c) {
  const info = await c.info('commandstats');
  const calls = (cmd) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+),.*failed_calls=(\\d+)`).exec(info)?.slice(1).reduce((a, b) => a - b) ?? 0);
  return calls('evalsha') + calls('eval');
}

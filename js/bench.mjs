// tollgate (wasm) against jose (WebCrypto, given imported CryptoKeys), in one run.
// Each case is timed one call at a time and as batches of 100 concurrent promises;
// the ratio is tollgate's best over jose's best.
//
//   node js/bench.mjs            (after scripts/build-npm.sh)
//   BENCH_MS=300 BENCH_ROUNDS=1 node js/bench.mjs   (shorter: ms per measurement, rounds)
//   TOLLGATE=path/to/entry.js    (another build of the package)
import * as jose from 'jose';

const entry = process.env.TOLLGATE ?? new URL('../pkg/node.js', import.meta.url).href;
const { createManager } = await import(entry);
const MS = Number(process.env.BENCH_MS ?? 1000);
const SECRET = 'a bench secret of at least thirty-two bytes!!';
const ISS = 'bench';

async function measure(fn) {
  // Warm up, then count calls for MS milliseconds; report ops/s.
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const end = performance.now() + MS;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
  }
  return (n * 1000) / (performance.now() - t0);
}

let lastCpuPerOp = 0;
async function measureConcurrent(fn) {
  const batch = () => Promise.all(Array.from({ length: 100 }, fn));
  for (let i = 0; i < 5; i++) await batch();
  let n = 0;
  const end = performance.now() + MS;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  while (performance.now() < end) {
    await batch();
    n += 100;
  }
  const cpu = process.cpuUsage(cpu0);
  // Process CPU time (all threads, WebCrypto's pool included) per call: less
  // sensitive than ops/s to other work on a shared machine.
  lastCpuPerOp = (cpu.user + cpu.system) / n;
  return (n * 1000) / (performance.now() - t0);
}

async function both(fn) {
  const seq = await measure(fn);
  const conc = await measureConcurrent(fn);
  return { seq, conc, best: Math.max(seq, conc), cpu: lastCpuPerOp };
}

const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(10);

// The machine is shared: alternate the two sides for ROUNDS rounds and keep each side's best.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const better = (a, b) =>
  a ? { seq: Math.max(a.seq, b.seq), conc: Math.max(a.conc, b.conc), best: Math.max(a.best, b.best), cpu: Math.min(a.cpu, b.cpu) } : b;

async function compare(name, tollgateFn, joseFn, goal) {
  let t, j;
  for (let r = 0; r < ROUNDS; r++) {
    t = better(t, await both(tollgateFn));
    j = better(j, await both(joseFn));
  }
  const ratio = t.best / j.best;
  const verdict = goal ? (ratio >= goal ? `goal >= ${goal}x met` : `goal >= ${goal}x MISSED`) : '';
  console.log(
    `${name.padEnd(14)} tollgate ${fmt(t.seq)} /s seq ${fmt(t.conc)} /s x100 | jose ${fmt(j.seq)} /s seq ${fmt(j.conc)} /s x100 | ratio ${ratio.toFixed(2)}x ${verdict}` +
      `\n${''.padEnd(14)} cpu per call (x100): tollgate ${t.cpu.toFixed(1)} us, jose ${j.cpu.toFixed(1)} us (jose/tollgate ${(j.cpu / t.cpu).toFixed(2)}x)`,
  );
  return { name, ratio, goal };
}

async function asymmetric(alg) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const pem = await jose.exportPKCS8(privateKey);
  const m = await createManager({ signingKey: pem, alg, kid: 'k1', issuer: ISS, refreshSecret: 'bench-refresh-secret-of-32-bytes-or-more' });
  const { accessToken } = await m.issue('bench-user');
  // jose gets the public key as an imported CryptoKey, as a server verifying tokens would hold it.
  const verifyKey = await jose.importJWK({ ...(await jose.exportJWK(publicKey)), alg }, alg);
  return { m, accessToken, verifyKey };
}

console.log(`node ${process.version}, ${MS} ms per measurement; tollgate from ${entry}`);
const results = [];

{
  const m = await createManager({ secret: SECRET, kid: 'h1', issuer: ISS });
  const { accessToken } = await m.issue('bench-user', { claims: { role: 'member' } });
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  const opts = { issuer: ISS, algorithms: ['HS256'] };
  results.push(
    await compare('HS256 verify', () => m.verify(accessToken, 'stateless'), () => jose.jwtVerify(accessToken, key, opts), 3),
  );
  let i = 0;
  // tollgate has no bare "sign": issue() mints a session (a memory-store write of the
  // record and the user index) and signs its token. 20000 users keep each index short.
  results.push(
    await compare(
      'HS256 sign',
      () => m.issue(`u${i++ % 20000}`, { claims: { role: 'member' } }),
      () =>
        new jose.SignJWT({ role: 'member', sid: 'AAAAAAAAAAAAAAAAAAAAAA' })
          .setProtectedHeader({ alg: 'HS256', kid: 'h1' })
          .setSubject(`u${i++ % 1000}`)
          .setIssuer(ISS)
          .setIssuedAt()
          .setExpirationTime('15m')
          .sign(key),
    ),
  );
}

for (const alg of ['ES256', 'EdDSA']) {
  const { m, accessToken, verifyKey } = await asymmetric(alg);
  const opts = { issuer: ISS, algorithms: [alg] };
  results.push(
    await compare(`${alg} verify`, () => m.verify(accessToken, 'stateless'), () => jose.jwtVerify(accessToken, verifyKey, opts), 0.9),
  );
}

const missed = results.filter((r) => r.goal && r.ratio < r.goal);
console.log(missed.length ? `goals missed: ${missed.map((r) => r.name).join(', ')}` : 'all speed goals met');

// The conformance suite (src/conformance) in workerd, on real bindings: Workers KV and D1 (miniflare's,
// SQLite on disk) in the Worker, and Durable Objects, each case inside a fresh user's object on its own store. It runs the
// Worker's test build (features worker,conformance: js/worker/build-conformance, made by
// scripts/test-worker.sh), whose test-only routes run one case each. Prints one line per store;
// exits 1 on a failure.
import { join } from 'node:path';
import { runSuite } from '../../test/conformance-runner.mjs';
import { buildDir, startWorker } from './harness.mjs';

const w = await startWorker({ store: 'durable', build: join(buildDir, '..', 'build-conformance') });
try {
  const listed = await w.call('GET', '/__conformance/cases');
  if (listed.status !== 200) throw new Error(`the conformance build answered ${listed.status} for its case list`);
  const run = (store) => async (name) => {
    // Each case on a connection of its own: after a heavy case (1,000 racing sign-ins on D1) workerd
    // may close the kept-alive connection just as the next case would reuse it.
    const r = await w.call('POST', `/__conformance/${store}/${name}`, { headers: { connection: 'close' } });
    return r.status === 200 ? r.body : { outcome: 'failed', failure: `HTTP ${r.status}: ${JSON.stringify(r.body)}` };
  };
  const passed = [];
  for (const store of ['workers-kv', 'd1', 'durable-objects']) passed.push(await runSuite(store, listed.body, run(store)));
  process.exitCode = passed.every(Boolean) ? 0 : 1;
} finally {
  await w.stop();
}

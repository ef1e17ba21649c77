// The conformance suite (src/conformance, in Rust) in Node: on the npm package's default store
// (the memory store, in wasm), on a store written in JavaScript over a Map (the documented
// contract), and on tollgate/redis-store over the redis-server on TG_TEST_REDIS_PORT (two
// ioredis clients, as two services). It runs through a test build of the wasm
// with the `conformance` feature (scripts/test-js.sh builds it; the npm package never has it),
// whose path is in TG_TEST_CONFORMANCE_MODULE. Prints one line per store; exits 1 on a failure.
import { createRequire } from 'node:module';
import Redis from 'ioredis';
import { redisStore } from 'tollgate/redis-store';
import { runSuite } from './conformance-runner.mjs';
import { mapData, mapStore } from './map-store.mjs';

const modulePath = process.env.TG_TEST_CONFORMANCE_MODULE;
if (!modulePath) throw new Error('set TG_TEST_CONFORMANCE_MODULE to the conformance build (scripts/test-js.sh does)');
const port = Number(process.env.TG_TEST_REDIS_PORT);
if (!port) throw new Error('set TG_TEST_REDIS_PORT to a Redis on 127.0.0.1 (scripts/test-js.sh does)');
const suite = createRequire(import.meta.url)(modulePath);
const cases = suite.conformanceCases();
const clients = [0, 1].map(() => new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 }));

const passed = [
  await runSuite('memory-wasm', cases, (name) => suite.runConformanceCase(name)),
  // Two store objects over one Map: two clients of the same data.
  await runSuite('js-map', cases, (name) => {
    const data = mapData();
    return suite.runConformanceCase(name, mapStore(data), mapStore(data));
  }),
  await runSuite('js-redis-store', cases, (name) => suite.runConformanceCase(name, redisStore(clients[0]), redisStore(clients[1]))),
];
await Promise.all(clients.map((c) => c.quit()));
process.exitCode = passed.every(Boolean) ? 0 : 1;

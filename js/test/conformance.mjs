// The conformance suite (src/conformance, in Rust) in Node: on the npm package's default store
// (the memory store, in wasm) and on stores written in JavaScript: a Map-backed store (the
// documented contract). It runs through a test build of the wasm
// with the `conformance` feature (scripts/test-js.sh builds it; the npm package never has it),
// whose path is in TOLLGATE_CONFORMANCE_MODULE. Prints one line per store; exits 1 on a failure.
import { createRequire } from 'node:module';
import { runSuite } from './conformance-runner.mjs';
import { mapData, mapStore } from './map-store.mjs';

const modulePath = process.env.TOLLGATE_CONFORMANCE_MODULE;
if (!modulePath) throw new Error('set TOLLGATE_CONFORMANCE_MODULE to the conformance build (scripts/test-js.sh does)');
const suite = createRequire(import.meta.url)(modulePath);
const cases = suite.conformanceCases();

const passed = [
  await runSuite('memory-wasm', cases, (name) => suite.runConformanceCase(name)),
  // Two store objects over one Map: two clients of the same data.
  await runSuite('js-map', cases, (name) => {
    const data = mapData();
    return suite.runConformanceCase(name, mapStore(data), mapStore(data));
  }),
];
process.exitCode = passed.every(Boolean) ? 0 : 1;

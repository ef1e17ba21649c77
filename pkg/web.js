// Browsers and bundlers (Vite, webpack 5, esbuild, Rollup): the module is fetched
// from next to this file; bundlers see the `new URL(..., import.meta.url)` and emit it.
import { entry } from './api.js';
import { tollgateError } from './errors.js';

export const { init, createManager, TollgateManager, clientIp } = entry(() => {
  // A bundle in a script format (esbuild's iife or cjs) has no import.meta.url:
  // there is no file to fetch, so say what works instead of "Invalid URL".
  if (typeof import.meta.url !== 'string') {
    throw tollgateError('config_invalid', 500,
      "tollgate cannot locate tollgate_bg.wasm: this bundle has no import.meta.url. Bundle with the 'edge-light' or 'workerd' condition, or call init(wasmModuleOrBytes) (from 'tollgate' or 'tollgate/init') before createManager()");
  }
  return new URL('./tollgate_bg.wasm', import.meta.url);
});

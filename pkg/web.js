// Browsers and bundlers (Vite, webpack 5, esbuild, Rollup): the module is fetched
// from next to this file; bundlers see the `new URL(..., import.meta.url)` and emit it.
import init from './tollgate.js';
import { entry } from './api.js';

export const { createManager, TollgateManager } = entry(() =>
  init({ module_or_path: new URL('./tollgate_bg.wasm', import.meta.url) }),
);

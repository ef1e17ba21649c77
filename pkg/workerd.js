// Cloudflare Workers (wrangler, workerd): a .wasm import is a compiled WebAssembly.Module.
import wasmModule from './tollgate_bg.wasm';
import { initSync } from './tollgate.js';
import { entry } from './api.js';

export const { createManager, TollgateManager } = entry(() => initSync({ module: wasmModule }));

// Cloudflare Workers (wrangler, workerd): a .wasm import is a compiled WebAssembly.Module.
import wasmModule from './tollgate_bg.wasm';
import { entry } from './api.js';

export const { init, createManager, TollgateManager } = entry(() => wasmModule);

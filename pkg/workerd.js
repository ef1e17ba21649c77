// Cloudflare Workers (wrangler, workerd): a .wasm import is a compiled WebAssembly.Module.
// Without `?module`: wrangler's bundler takes both forms, but workerd loading the
// package unbundled (Miniflare's module rules) looks for a file named `...wasm?module`.
import wasmModule from './tollgate_bg.wasm';
import { entry } from './api.js';

export const { init, createManager, TollgateManager, clientIp } = entry(() => wasmModule);

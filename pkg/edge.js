// Vercel Edge and Next.js middleware (the `edge-light` condition): only a .wasm
// imported with `?module` may be instantiated there (compiling bytes is refused);
// the bundler hands it in as a WebAssembly.Module, often made in another realm.
import wasmModule from './tollgate_bg.wasm?module';
import { entry } from './api.js';

export const { init, createManager, TollgateManager, clientIp } = entry(() => wasmModule);

// `tollgate/init`: the package without any reference to its .wasm, for runtimes
// and bundlers none of the other entries fits. Call init(moduleOrBytes) first.
import { entry } from './api.js';
import { tollgateError } from './errors.js';

export const { init, createManager, TollgateManager, clientIp } = entry(() => {
  throw tollgateError('config_invalid', 500,
    "call init(wasmModuleOrBytes) from 'tollgate/init' before createManager(): this entry does not load tollgate_bg.wasm by itself");
});

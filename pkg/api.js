// The package's entry points share this: the wasm module is initialized once,
// on the first createManager(), by the runtime-specific `init` each entry gives.
import { createManager as create, TollgateManager } from './tollgate.js';

export function entry(init) {
  let ready;
  return {
    /** @param {import('./index.js').TollgateConfig} config */
    async createManager(config) {
      await (ready ??= Promise.resolve().then(init));
      return create(config);
    },
    TollgateManager,
  };
}

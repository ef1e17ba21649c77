// The package's entry points share this: the wasm module is instantiated once,
// either by the app's init(source) or, on the first createManager(), from the
// source the runtime-specific entry names.
import initWasm, { createManager as create, TollgateManager, clientIp as wasmClientIp } from './tollgate.js';
import { tollgateError } from './errors.js';

let ready; // the one instantiation, shared by every entry (tollgate.js holds one module)

// Checks that do not depend on the realm: a WebAssembly.Module, ArrayBuffer or
// Response made in another realm (a vm context, an iframe, the host of an
// edge emulator) fails `instanceof` here but carries the same brand.
const tag = (value) => Object.prototype.toString.call(value);
const isModule = (value) => tag(value) === '[object WebAssembly.Module]';
const isBytes = (value) => ArrayBuffer.isView(value) || tag(value) === '[object ArrayBuffer]';
const isResponse = (value) => tag(value) === '[object Response]';

async function instantiate(source) {
  source = await source;
  if (isModule(source) || isBytes(source)) {
    // WebAssembly.instantiate checks the brand, not the prototype, so a module
    // of another realm instantiates here; wasm-bindgen's initSync would refuse it.
  } else if (isResponse(source)) {
    if (!(source instanceof Response)) source = await source.arrayBuffer();
  } else if (typeof source === 'string' || source instanceof URL) {
    // fetched by wasm-bindgen's init
  } else {
    throw tollgateError('config_invalid', 500,
      'init() takes the tollgate_bg.wasm as a WebAssembly.Module, its bytes (ArrayBuffer or typed array), a Response or a URL');
  }
  await initWasm({ module_or_path: source });
}

/** Instantiates the wasm from `source` (once; later calls answer the first one's result). */
export function init(source) {
  ready ??= instantiate(source);
  ready.catch(() => (ready = undefined)); // a failed init may be retried with another source
  return ready;
}

/** The entry's exports; `defaultSource()` names the wasm when the app did not call init(). */
export function entry(defaultSource) {
  return {
    init,
    /** @param {import('./index.js').TollgateConfig} config */
    async createManager(config) {
      await (ready ?? init(Promise.resolve().then(defaultSource)));
      return create(config);
    },
    TollgateManager,
    /** The trusted-proxy rule (docs/cookies.md, "Client IP"); after the first createManager() or init(). */
    clientIp(trustedProxy, peer, headers) {
      if (!ready) throw tollgateError('config_invalid', 500, 'clientIp() runs once the module is loaded: call createManager() or init() first');
      return wasmClientIp(trustedProxy, peer, headers);
    },
  };
}

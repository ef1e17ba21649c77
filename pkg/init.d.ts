// `tollgate/init`: the same API as `tollgate`, with no reference to tollgate_bg.wasm;
// call init() with the module or its bytes before createManager().
export * from './index.js';

// Node 20+ (and Deno): the module is read from the package folder and compiled synchronously.
import { readFileSync } from 'node:fs';
import { initSync } from './tollgate.js';
import { entry } from './api.js';

export const { createManager, TollgateManager } = entry(() =>
  initSync({ module: readFileSync(new URL('./tollgate_bg.wasm', import.meta.url)) }),
);

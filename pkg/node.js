// Node 20+ (and Deno): the module is read from the package folder.
import { readFileSync } from 'node:fs';
import { entry } from './api.js';

export const { init, createManager, TollgateManager, clientIp } = entry(() =>
  readFileSync(new URL('./tollgate_bg.wasm', import.meta.url)),
);

// Prints a wasm module's imports by module and fails if any comes from `env`
// (the host): the core must need nothing but what wasm-bindgen provides.
// Usage: node scripts/wasm-imports.mjs path/to/module.wasm
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/wasm-imports.mjs <module.wasm>');
  process.exit(2);
}
const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(file)));
const byModule = new Map();
for (const { module, name, kind } of imports) {
  if (!byModule.has(module)) byModule.set(module, []);
  byModule.get(module).push(`${kind} ${name}`);
}
for (const [module, names] of byModule) console.log(`${module}: ${names.length} import(s)`);
const env = byModule.get('env') ?? [];
if (env.length > 0) {
  console.error(`FAIL: ${file} imports from env:\n  ${env.join('\n  ')}`);
  process.exit(1);
}
console.log(`ok: ${file} imports nothing from env`);

// A module hook that imports .wasm files the way Cloudflare Workers do: the
// default export is a compiled WebAssembly.Module. entries.test.mjs uses it
// to load the package's workerd entry in Node.
export async function load(url, context, next) {
  if (url.endsWith('.wasm')) {
    const source = `import { readFileSync } from 'node:fs';
export default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));`;
    return { format: 'module', shortCircuit: true, source };
  }
  return next(url, context);
}

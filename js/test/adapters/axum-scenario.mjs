// The adapters' scenario (scenario.mjs) against the Rust axum layer, over real
// sockets: tests/axum_layer.rs serves the 'bearer' and 'cookie' apps on two
// loopback ports and runs `node axum-scenario.mjs <bearer URL> <cookie URL>`.
// Prints the checks and failures as one JSON line. Node's own http client: it
// sends Host, Origin and Sec-Fetch-Site as given.
import http from 'node:http';
import { runScenario } from './scenario.mjs';

const [bearer, cookie] = process.argv.slice(2);
const bases = { bearer: new URL(bearer), cookie: new URL(cookie) };

function send(app, { method, path, headers }) {
  const base = bases[app];
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = { unparsed: text };
        }
        resolve({ status: res.statusCode, setCookie: res.headers['set-cookie'] ?? [], cacheControl: res.headers['cache-control'] ?? null, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

console.log(JSON.stringify({ runtime: 'axum', ...(await runScenario(send)) }));

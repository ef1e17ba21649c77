// The README's "Use from JavaScript" example runs as written, against the installed package.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test('the README example runs and prints what its comments say', async () => {
  const pkgDir = dirname(createRequire(import.meta.url).resolve('tollgate/package.json'));
  const readme = await readFile(join(pkgDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use from JavaScript'));
  const start = section.indexOf('```js\n') + 6;
  const code = section.slice(start, section.indexOf('\n```', start));
  assert.ok(code.includes('createManager'));
  // Run from this folder, so `tollgate` resolves to the installed package.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: dirname(fileURLToPath(import.meta.url)),
    encoding: 'utf8',
  });
  assert.deepEqual(out.trim().split('\n'), ['user-42 admin laptop', 'token_invalid', '2', '1']);
});

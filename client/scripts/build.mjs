// Builds the client: dist/*.js and *.d.ts (the package, through tsc) and
// dist/switchboard-client.min.js, one minified ES module (esbuild) that the server serves at
// GET /client.js. Its gzipped size is checked against the budget: past it, the build fails.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 5 * 1024;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

rmSync(join(root, 'dist'), { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const { build } = await import('esbuild');
const bundle = join(root, 'dist', 'switchboard-client.min.js');
await build({
  entryPoints: [join(root, 'src', 'index.ts')],
  outfile: bundle,
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  // Internal members are named _x: nothing outside the client reads them, so they may be short.
  mangleProps: /^_/,
  legalComments: 'none',
  logLevel: 'warning',
});

const size = gzipSync(readFileSync(bundle), { level: 9 }).length;
const shown = `${(size / 1024).toFixed(2)} KB`;
if (size > BUDGET) {
  console.error(`switchboard-client: ${shown} minified and gzipped, over the ${BUDGET / 1024} KB budget`);
  process.exit(1);
}
console.log(`switchboard-client: ${shown} minified and gzipped (budget ${BUDGET / 1024} KB)`);

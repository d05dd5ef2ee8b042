// Builds dist/ from src/: `npm run build`, which npm runs itself as `preprepare` (npm install
// and npm ci in a clone) and `prepack` (npm pack, npm publish).
//
// Not as `prepare`: npm 11 counts a package's `prepare` among the install scripts an app must
// approve when it installs the package from a tarball or git (it does not even run it for a
// tarball), and under --strict-allow-scripts refuses the install. npm runs `preprepare` for
// the project being installed only (a git dependency is installed so too, and builds), and
// packing needs `prepack`. A directory or workspace link gets only `prepare`: build the clone first.
//
// dist/ is emptied first: tsc only writes, so the output of a module that was moved or
// deleted would otherwise stay in dist/ and be published with the package.
//
// The client (client/, a workspace of its own) is built first: the server serves its bundle
// at GET /client.js, and the package ships that one file.
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const client = spawnSync(process.execPath, ['client/scripts/build.mjs'], { stdio: 'inherit' });
if (client.status !== 0) process.exit(client.status ?? 1);

rmSync('dist', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// npm makes `bin` files executable when it installs the package, but not in this checkout.
chmodSync('dist/cli/main.js', 0o755);

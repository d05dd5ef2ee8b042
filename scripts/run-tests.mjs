// Runs every test file under test/ with Node's test runner (TypeScript through tsx).
// Node 20's runner takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'helpers' ? [] : testFiles(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : testFiles('test').sort().map((file) => relative('.', file));
if (files.length === 0) {
  console.error('no test files found under test/');
  process.exit(1);
}
// --test-timeout bounds each file as a whole (Node 20 gives it to the test of the file, not
// to the tests in it). The Sentinel and Cluster files wait on real failovers, whose own
// bounds add up to minutes on a loaded machine (a sentinel in TILT stands still for 30 s):
// a file gets 6 minutes, so that it fails on its own bounds rather than on the runner's.
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=360000', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);

// `npm test` builds only when needed: `npm ci` / `npm install` already built the package (the
// root-only "dependencies" script), so a CI run builds once. Rebuilds when an output is missing
// or older than any source it comes from (assembly/ → build/*.wasm; src/, bench/ → dist/).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const newest = (p) => {
  if (!existsSync(p)) return 0;
  const s = statSync(p);
  return s.isDirectory() ? Math.max(0, ...readdirSync(p).map((f) => newest(join(p, f)))) : s.mtimeMs;
};
const oldest = (files) => Math.min(...files.map((f) => (existsSync(f) ? statSync(f).mtimeMs : 0)));
const wasm = ['simd', 'relaxed', 'simd_mt', 'relaxed_mt'].map((v) => join(root, 'build', `kernels_${v}.wasm`));
const wasmStale = oldest(wasm) < Math.max(newest(join(root, 'assembly')), newest(join(root, 'asconfig.json')));
const tsStale =
  oldest([join(root, 'dist/src/index.js')]) < Math.max(newest(join(root, 'src')), newest(join(root, 'bench')), newest(join(root, 'tsconfig.json')));
const run = (script) => execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '-s', script], { cwd: root, stdio: 'inherit' });
if (wasmStale || tsStale) run('build');

// Builds the AssemblyScript kernels (assembly/) into build/*.wasm with the assemblyscript
// package: plain SIMD128 and Relaxed SIMD, each with private memory (single thread) and with
// shared memory (worker threads). Targets and flags live in asconfig.json.
import asc from 'assemblyscript/asc';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
mkdirSync('build', { recursive: true });
const targets = ['simd', 'relaxed', 'simd-mt', 'relaxed-mt'];
for (const target of targets) {
  const t0 = Date.now();
  const { error, stderr } = await asc.main(['--config', 'asconfig.json', '--target', target], {});
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: target ${target} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: ${target} (${Date.now() - t0} ms)`);
}
// A copy in dist/build/: the compiled browser adapter (dist/src/browser/wasm_host.js) names the
// kernels as new URL('../../build/…', import.meta.url), the same relative path as from src/browser/.
mkdirSync('dist/build', { recursive: true });
for (const target of targets) {
  const file = `kernels_${target.replace('-', '_')}.wasm`;
  copyFileSync(join('build', file), join('dist/build', file));
}

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { closeness, rand } from './numeric.js';

/** Builds build/*.wasm if a fresh checkout has not run `npm run build:wasm` yet. */
export function ensureWasmBuilt(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  if (!existsSync(`${root}build/kernels_relaxed_mt.wasm`)) execFileSync(process.execPath, [`${root}scripts/build-wasm.mjs`], { stdio: 'inherit' });
}


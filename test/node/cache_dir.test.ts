/**
 * Where generated files go (src/node/cache_dir.ts): the option, then $GEMMA3N_CACHE_DIR, then
 * $XDG_CACHE_HOME/gemma3n-ts, then ~/.cache/gemma3n-ts; never the package folder. And the
 * default model is created atomically: two processes creating it at once both succeed and
 * leave one complete folder.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheDir } from '../../src/node/cache_dir.js';
import { defaultModelDir, packageRoot } from '../../src/node/default_model.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const saved = {
  GEMMA3N_CACHE_DIR: process.env.GEMMA3N_CACHE_DIR,
  XDG_CACHE_HOME: process.env.XDG_CACHE_HOME,
  GEMMA3N_DEFAULT_MODEL_DIR: process.env.GEMMA3N_DEFAULT_MODEL_DIR,
};

describe('cache directory', () => {
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('option > $GEMMA3N_CACHE_DIR > $XDG_CACHE_HOME/gemma3n-ts > ~/.cache/gemma3n-ts', () => {
    delete process.env.GEMMA3N_CACHE_DIR;
    delete process.env.XDG_CACHE_HOME;
    delete process.env.GEMMA3N_DEFAULT_MODEL_DIR;
    expect(cacheDir()).toBe(join(homedir(), '.cache', 'gemma3n-ts'));
    process.env.XDG_CACHE_HOME = '/x/cache';
    expect(cacheDir()).toBe('/x/cache/gemma3n-ts');
    process.env.XDG_CACHE_HOME = 'relative/cache'; // invalid per the XDG spec: ignored
    expect(cacheDir()).toBe(join(homedir(), '.cache', 'gemma3n-ts'));
    process.env.GEMMA3N_CACHE_DIR = '/y/g3n';
    expect(cacheDir()).toBe('/y/g3n');
    expect(cacheDir({ cacheDir: '/z/opt' })).toBe('/z/opt');
    expect(defaultModelDir()).toBe('/y/g3n/default-model-v1');
    expect(defaultModelDir({ cacheDir: '/z/opt' })).toBe('/z/opt/default-model-v1');
  });

  it('the default model never goes into the package folder', () => {
    delete process.env.GEMMA3N_CACHE_DIR;
    delete process.env.GEMMA3N_DEFAULT_MODEL_DIR;
    expect(defaultModelDir().startsWith(packageRoot())).toBe(false);
  });

  it('two processes creating the default model at once: both succeed, one complete folder, no leftovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'g3n-cache-'));
    try {
      const script = 'const m = await import(process.argv[1]); process.stdout.write(await m.ensureDefaultModel());';
      const env: NodeJS.ProcessEnv = { ...process.env, GEMMA3N_CACHE_DIR: dir };
      delete env.GEMMA3N_DEFAULT_MODEL_DIR;
      const entry = join(ROOT, 'dist/src/node/index.js');
      const [a, b] = await Promise.all([0, 1].map(() => run(process.execPath, ['--input-type=module', '-e', script, entry], { env })));
      const want = join(dir, 'default-model-v1');
      expect(a.stdout).toBe(want);
      expect(b.stdout).toBe(want);
      expect(readdirSync(dir)).toEqual(['default-model-v1']); // the loser's temporary folder is gone
      expect(readdirSync(want).sort()).toEqual(['README.txt', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      const config = JSON.parse(readFileSync(join(want, 'config.json'), 'utf8'));
      expect(config.vocab_size).toBe(262400);
      expect(existsSync(join(want, 'model.safetensors'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

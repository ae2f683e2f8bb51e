/**
 * The Deno suite, run from `npm test`: Deno comes from the `deno` npm package (a devDependency,
 * so `npm ci` installs it). It runs the golden tests (golden.deno.ts) and the WASM kernel tests
 * (kernels.deno.ts) on the compiled package, and a seeded sampling run that must equal Node's
 * token for token.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { tinyRealVocabFolder } from '../helpers.js';

const run = promisify(execFile);
export const DENO = join(import.meta.dirname, '../../node_modules/.bin/deno');

describe('Deno', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gemma3n-deno-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('golden tests pass under Deno (deno test test/deno/golden.deno.ts)', async () => {
    const { stdout } = await run(DENO, ['test', '--no-check', '--allow-read', 'test/deno/golden.deno.ts'], { env: { ...process.env, NO_COLOR: '1' } });
    expect(stdout).toMatch(/ok \| 4 passed \| 0 failed/);
  });

  it('WASM kernels under Deno: every variant vs its TS twin, 2 threads, golden greedy (deno test test/deno/kernels.deno.ts)', async () => {
    const { stdout } = await run(DENO, ['test', '--no-check', '--allow-read', 'test/deno/kernels.deno.ts'], { env: { ...process.env, NO_COLOR: '1' } });
    // 5 tests: Relaxed SIMD present + 4 variants (simd128/relaxed × 1/2 threads); 29 steps per
    // variant (the row ops included), 30 with 2 threads (bit-exact hand-off check).
    expect(stdout).toMatch(/ok \| 5 passed \(118 steps\) \| 0 failed/);
    expect(stdout).toMatch(/WasmKernels relaxed=true threads=2 vs TsKernels \.\.\. ok/);
  });

  it('seeded sampling through Gemma3n.generate gives the same ids and text as Node', async () => {
    const folder = tinyRealVocabFolder();
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      const src = await folder.open(name);
      writeFileSync(join(tmp, name), await src.read(0, src.size));
    }
    const { stdout } = await run(DENO, ['run', '--no-check', '--allow-read', 'test/deno/generate_probe.ts', tmp], { env: { ...process.env, NO_COLOR: '1' } });
    const deno = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ids: number[]; text: string; pieces: number };
    const g3n = await Gemma3n.load(folder);
    const node = await g3n.generate([{ role: 'user', content: 'Hello from Deno' }], { maxTokens: 24, temperature: 0.9, topK: 50, topP: 0.95, seed: 7 });
    expect(deno.ids).toEqual(node.ids);
    expect(deno.text).toBe(node.text);
    expect(deno.ids.length).toBe(24);
    expect(deno.pieces).toBeGreaterThan(0);
  });
});

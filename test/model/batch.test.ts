/**
 * The batched model step (Gemma3nTextModel.forwardBatch): several sequences, each with its own
 * cache and position, in one forward, and prompts prefilled in chunks. Every row is computed as
 * if alone, so the logits must be bit-identical to running each sequence by itself with
 * `forward` on the whole prompt, on the TS kernels and on the WASM int4 kernels.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { argmax } from '../../src/engine/greedy.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import type { WasmKernels } from '../../src/kernels/wasm_kernels.js';
import { ensureWasmBuilt, tinyFolder } from '../helpers.js';

// Prompts longer than the tiny model's sliding window (8) so chunks cross evictions.
const PROMPTS = [[2, 818, 2279, 529, 611, 1027, 7, 9, 3051, 88, 912, 4, 77, 1200], [2, 105], [2, 3000, 3001], [2, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40]];
const DECODE = 12;

/** Greedy run of one prompt alone: whole-prompt forward, then one token at a time. */
async function alone(model: Gemma3nTextModel, prompt: number[]): Promise<Float32Array[]> {
  const cache = model.newCache();
  const out: Float32Array[] = [];
  let input = prompt;
  for (let i = 0; i < DECODE; i++) {
    const { logits } = await model.forward(input, cache, { logits: 'last' });
    out.push(logits);
    input = [argmax(logits)];
  }
  cache.release();
  return out;
}

/**
 * All prompts together: each prompt is fed `chunk` tokens per step (sequences start at
 * different steps and overlap prefill with the others' decoding), then greedy decoding.
 */
async function batched(model: Gemma3nTextModel, prompts: number[][], chunk: number): Promise<Float32Array[][]> {
  const seqs = prompts.map((p, i) => ({ prompt: p, fed: 0, start: i, cache: model.newCache(), next: -1, out: [] as Float32Array[] }));
  for (let step = 0; seqs.some((s) => s.out.length < DECODE); step++) {
    const active = seqs.filter((s) => step >= s.start && s.out.length < DECODE);
    const batch = active.map((s) => {
      if (s.fed < s.prompt.length) {
        const ids = s.prompt.slice(s.fed, s.fed + chunk);
        s.fed += ids.length;
        return { ids, cache: s.cache, logits: s.fed === s.prompt.length };
      }
      return { ids: [s.next], cache: s.cache };
    });
    const logits = await model.forwardBatch(batch);
    active.forEach((s, i) => {
      if (logits[i].length === 0) return;
      s.out.push(logits[i]);
      s.next = argmax(logits[i]);
    });
  }
  for (const s of seqs) s.cache.release();
  return seqs.map((s) => s.out);
}

async function checkKernels(kernels: Kernels, format: 'f32' | 'q4'): Promise<void> {
  const { model } = await Gemma3nTextModel.load(tinyFolder(), kernels, { format });
  const want: Float32Array[][] = [];
  for (const p of PROMPTS) want.push(await alone(model, p));
  for (const chunk of [1, 3, 64]) {
    const got = await batched(model, PROMPTS, chunk);
    got.forEach((seq, i) => seq.forEach((l, j) => {
      expect(l.length, `chunk ${chunk} prompt ${i} step ${j}`).toBe(want[i][j].length);
      // bit-identical: toEqual on Float32Array compares every value exactly
      expect(l, `chunk ${chunk} prompt ${i} step ${j}`).toEqual(want[i][j]);
    }));
  }
}

let wasm: WasmKernels | null = null;
afterAll(() => wasm?.dispose());

describe('forwardBatch: B sequences in one step equal each sequence alone', () => {
  it('TS kernels, f32: bit-identical logits for batched decode and chunked prefill (chunks 1, 3, 64)', async () => {
    await checkKernels(new TsKernels(), 'f32');
  }, 60_000);

  it('WASM kernels, int4, 2 threads: bit-identical logits', async () => {
    ensureWasmBuilt();
    const { createNodeWasmKernels } = await import('../../src/node/wasm_host.js');
    wasm = await createNodeWasmKernels({ threads: 2, smallJobMacs: 0 });
    await checkKernels(wasm, 'q4');
  }, 60_000);

  it('refuses an empty sequence and two sequences sharing one cache', async () => {
    const { model } = await Gemma3nTextModel.load(tinyFolder(), new TsKernels());
    const cache = model.newCache();
    await expect(model.forwardBatch([{ ids: [2], cache: model.newCache() }, { ids: [], cache }])).rejects.toThrow(/sequence 1 has no tokens/);
    await expect(model.forwardBatch([{ ids: [2], cache }, { ids: [3], cache }])).rejects.toThrow(/sequence 1 shares its cache/);
    expect(await model.forwardBatch([])).toEqual([]);
  });
});

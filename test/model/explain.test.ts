/** The explain record reports what the forward pass did (layers, KV sharing, FFN sparsity, PLE rows), and the trace formatter prints it. */
import { describe, expect, it } from 'vitest';
import { formatExplain } from '../../src/trace/explain_format.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import type { StepExplain } from '../../src/model/explain.js';
import { goldenFolder } from '../helpers.js';

describe('selective parameter activation', () => {
  it('explain reports layers, KV sharing, FFN sparsity and PLE rows per step', async () => {
    const { model, checkpoint } = await Gemma3nTextModel.load(goldenFolder('text-tiny-b'), new TsKernels(), { ple: 'stream' });
    const cache = model.newCache();
    const prefill: StepExplain = {};
    await model.forward([5, 6, 7, 8, 9, 10, 11, 12], cache, { explain: prefill });
    const step: StepExplain = {};
    await model.forward([5], cache, { explain: step });
    expect(step.position).toBe(8);
    expect(step.layers!.map((l) => l.kvSource)).toEqual([0, 1, 2, 3, 2, 2, 3]); // README: 4,5 ← 2; 6 ← 3
    expect(step.layers!.map((l) => l.type)).toEqual(['sliding', 'sliding', 'sliding', 'full', 'sliding', 'sliding', 'full']);
    // Sliding window 6: the new token at position 8 sees 6 keys; full layers see all 9.
    expect(step.layers!.map((l) => l.keysAttended)).toEqual([6, 6, 6, 9, 6, 6, 9]);
    // Sparsity 0.9 / 0.75 / 0.6 keeps roughly 10% / 25% / 40% of the gate; the rest are dense.
    const frac = step.layers!.map((l) => l.ffnActiveFraction);
    expect(frac[0]).toBeLessThan(0.25);
    expect(frac[1]).toBeGreaterThan(frac[0]);
    expect(frac[2]).toBeGreaterThan(frac[1]);
    expect(frac[2]).toBeLessThan(0.6);
    expect(frac.slice(3)).toEqual([1, 1, 1, 1]);
    expect(step.pleRowsLookedUp).toEqual([5]);
    expect(step.pleRowsFetched).toEqual([]); // id 5 was read during the prefill and is cached
    expect(prefill.pleRowsFetched!.length).toBe(8);
    expect(step.kvCacheBytes).toBe(cache.bytes);
    expect(formatExplain(step, 42, 'x')).toMatch(/layer {2}4 sliding attends +6 keys, K\/V shared from layer 2/);
    await checkpoint.close();
  });
});

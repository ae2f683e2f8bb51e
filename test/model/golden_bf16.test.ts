/**
 * bf16 checkpoint (text-tiny-a/model.bf16.safetensors): weights widened to f32 on load must
 * reproduce `logits_f32compute` at the f32 tolerance (5e-4), and stay near the loose
 * `logits_bf16compute` reference (mean abs diff < 0.3, per the golden README).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

describe('golden text-tiny-a bf16 weights', () => {
  it('matches logits_f32compute and is near logits_bf16compute', async () => {
    const { model, checkpoint } = await Gemma3nTextModel.load(goldenFolder('text-tiny-a'), new TsKernels(), { weightsFile: 'model.bf16.safetensors' });
    const info = await checkpoint.info('model.language_model.layers.0.mlp.gate_proj.weight');
    expect(info.dtype).toBe('BF16');
    const golden = await openSafetensors(join(GOLDEN, 'text-tiny-a', 'golden.bf16.safetensors'));
    for (const seq of [0, 1]) {
      const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
      const { logits } = await model.forward(ids, model.newCache(), { logits: 'all' });
      expect(maxAbsDiff(logits, await golden.readF32(`logits_f32compute.${seq}`))).toBeLessThan(5e-4);
      const loose = await golden.readF32(`logits_bf16compute.${seq}`);
      let sum = 0;
      for (let i = 0; i < loose.length; i++) sum += Math.abs(loose[i] - logits[i]);
      expect(sum / loose.length).toBeLessThan(0.3);
    }
    await golden.source.close?.();
    await checkpoint.close();
  });
});

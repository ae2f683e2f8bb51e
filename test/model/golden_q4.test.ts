/**
 * int4 weights on the tiny golden models.
 *
 * 1. The int4 path is exact about what it computes: a q4 model (WASM kernels, int8 activations
 *    per group) equals the f32 model whose weights were quantized→dequantized, within a tight
 *    bound that only the int8 activation rounding explains.
 * 2. Against the f32 reference the deviation is the weights' quantization noise. These tiny
 *    models have random weights and hidden states up to ~90, so they amplify it enormously
 *    (bf16 rounding alone moves their logits by 0.44, golden README): int4 flips many greedy
 *    tokens. Documented and asserted bounds (README "int4 accuracy"): max logit error, and
 *    the share of positions whose reference top-1 is in our top-5.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernels, LinearWeight, WeightFormat } from '../../src/kernels/kernels.js';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

/** f32 kernels whose q4 weights are stored dequantized: int4 weights, exact float activations. */
class DequantizedQ4 extends TsKernels {
  override createLinear(w: Float32Array, outDim: number, inDim: number, format: WeightFormat = 'f32'): LinearWeight {
    const f = format === 'q4' ? Q4Matrix.quantize(w, outDim, inDim).dequantize() : w;
    return super.createLinear(f, outDim, inDim, 'f32');
  }
}

// Measured (README "int4 accuracy"): max logit error 14.3 / 10.3; reference top-1 in our
// top-5 at 44/61 (72%) / 45/53 (85%) positions; bounds leave ~30% headroom.
const BOUNDS: Record<string, { maxLogitErr: number; top5: number }> = {
  'text-tiny-a': { maxLogitErr: 20, top5: 0.65 },
  'text-tiny-b': { maxLogitErr: 14, top5: 0.75 },
};
// int8 activations alone (measured 0.71 / 0.93 on 12 positions): these models amplify even 0.4% noise.
const ACTIVATION_BOUND = 1.5;

function top5(x: Float32Array, off: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => i).sort((a, b) => x[off + b] - x[off + a]).slice(0, 5);
}

let wasm: Kernels;
beforeAll(async () => { wasm = await createNodeWasmKernels({ threads: 2 }); });

for (const name of ['text-tiny-a', 'text-tiny-b']) {
  describe(`int4 ${name}`, () => {
    it('q4 in WASM equals f32 with quantize→dequantize weights (only int8 activation rounding differs)', async () => {
      const { model: q4 } = await Gemma3nTextModel.load(goldenFolder(name), wasm, { format: 'q4' });
      const { model: dq } = await Gemma3nTextModel.load(goldenFolder(name), new DequantizedQ4(), { format: 'q4' });
      const golden = await openSafetensors(join(GOLDEN, name, 'golden.safetensors'));
      const ids = Array.from(await golden.readF32('input_ids.0')).slice(0, 12);
      const a = await q4.forward(ids, q4.newCache(), { logits: 'all' });
      const b = await dq.forward(ids, dq.newCache(), { logits: 'all' });
      const err = maxAbsDiff(a.logits, b.logits);
      expect(err).toBeLessThan(ACTIVATION_BOUND);
      // ...while the quantization itself moves the logits far more than that.
      expect(maxAbsDiff(b.logits, (await golden.readF32('logits.0')).subarray(0, 12 * q4.config.vocabSize))).toBeGreaterThan(2 * err);
    });

    it('against the f32 reference: logit error and top-5 agreement within the documented bounds', async () => {
      const { model } = await Gemma3nTextModel.load(goldenFolder(name), wasm, { format: 'q4' });
      const golden = await openSafetensors(join(GOLDEN, name, 'golden.safetensors'));
      const V = model.config.vocabSize;
      let hits = 0, positions = 0, maxErr = 0;
      for (const seq of [0, 1]) {
        const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
        const { logits } = await model.forward(ids, model.newCache(), { logits: 'all' });
        const ref = await golden.readF32(`logits.${seq}`);
        maxErr = Math.max(maxErr, maxAbsDiff(logits, ref));
        for (let t = 0; t < ids.length; t++) {
          if (top5(logits, t * V, V).includes(top5(ref, t * V, V)[0])) hits++;
          positions++;
        }
      }
      console.log(`${name} int4: max logit error ${maxErr.toFixed(2)}, reference top-1 in our top-5 at ${hits}/${positions} positions`);
      expect(maxErr).toBeLessThan(BOUNDS[name].maxLogitErr);
      expect(hits / positions).toBeGreaterThanOrEqual(BOUNDS[name].top5);
    });
  });
}

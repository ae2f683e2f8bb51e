/**
 * `gemma3n trace --all --steps N` (traceText): every decoder-layer intermediate under the
 * reference's local names, step by step. Held to the reference: the decode steps reproduce the
 * golden greedy continuation and its step logits; inside each layer the named tensors satisfy
 * the relations of Gemma3nTextDecoderLayer.forward (attn_gated = active_prediction + attn, ...);
 * and the golden set is unchanged by tracing everything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TensorToWrite } from '../../src/checkpoint/safetensors.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { traceText } from '../../src/trace/text.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

interface Generation {
  prompts: { prompt_ids: number[]; generated_ids: number[] }[];
}

const STEPS = 3;

describe('trace --all --steps (text-tiny-a)', () => {
  let model: Gemma3nTextModel;
  let prompt: Generation['prompts'][number];
  let tensors: Map<string, TensorToWrite>;
  const f32 = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    return t.data as Float32Array;
  };

  beforeAll(async () => {
    ({ model } = await Gemma3nTextModel.load(goldenFolder('text-tiny-a'), new TsKernels()));
    prompt = (JSON.parse(readFileSync(join(GOLDEN, 'text-tiny-a', 'generation.json'), 'utf8')) as Generation).prompts[0]!;
    const list = await traceText(model, prompt.prompt_ids, undefined, { all: true, steps: STEPS });
    tensors = new Map(list.map((t) => [t.name, t]));
  });

  it('the decode steps follow the golden greedy continuation, with its step logits', async () => {
    expect(Array.from(tensors.get('generated_ids')!.data as Int32Array)).toEqual(prompt.generated_ids.slice(0, STEPS));
    const golden = await openSafetensors(join(GOLDEN, 'text-tiny-a', 'golden.safetensors'));
    const ref = await golden.readF32('gen.0.step_logits');
    const V = model.config.vocabSize;
    for (let s = 1; s <= STEPS; s++) {
      expect(tensors.get(`step.${s}.logits`)!.shape).toEqual([1, 1, V]);
      expect(maxAbsDiff(f32(`step.${s}.logits`), ref.subarray(s * V, (s + 1) * V)), `step ${s}`).toBeLessThan(5e-4);
    }
  });

  it('inside every layer, at the prompt and at each step, the named tensors relate as in Gemma3nTextDecoderLayer.forward', () => {
    const c = model.config;
    const H = c.hiddenSize,
      A = c.altupNumInputs,
      active = c.altupActiveIdx;
    for (const prefix of ['', ...Array.from({ length: STEPS }, (_, s) => `step.${s + 1}.`)]) {
      const T = prefix === '' ? prompt.prompt_ids.length : 1,
        TH = T * H;
      const hidden = f32(`${prefix}hidden_states`);
      for (let l = 0; l < c.numHiddenLayers; l++) {
        const at = (n: string): Float32Array => f32(`${prefix}layers.${l}.${n}`);
        const where = `${prefix}layers.${l}`;
        expect(tensors.get(`${prefix}layers.${l}.predictions`)!.shape).toEqual([A, 1, T, H]);
        expect(at('active_prediction'), where).toEqual(at('predictions').subarray(active * TH, (active + 1) * TH));
        const gated = at('active_prediction').map((x, i) => x + at('attn')[i]);
        expect(at('attn_gated'), where).toEqual(gated);
        let m = 0;
        for (let i = 0; i < TH; i++)
          m = Math.max(m, Math.abs(at('attn_laurel')[i] - (gated[i] + at('laurel_output')[i]) * Math.SQRT1_2) / (1 + Math.abs(at('attn_laurel')[i])));
        expect(m, `${where} attn_laurel`).toBeLessThan(1e-6);
        expect(at('attn_ffw_laurel_gated'), where).toEqual(at('attn_laurel').map((x, i) => x + at('attn_ffw_norm')[i]));
        expect(
          at('attn_ffw').some((x, i) => x !== at('attn_ffw_norm')[i]),
          `${where}: attn_ffw is taken before its norm`,
        ).toBe(true);
        expect(tensors.get(`${prefix}layers.${l}.per_layer_input`)!.shape).toEqual([1, T, c.hiddenSizePerLayerInput]);
        // The layer's output: stream 0 is corrected_predictions[0]; streams 1.. also get first_prediction.
        const corrected = at('corrected_predictions'),
          first = at('first_prediction');
        const out = hidden.subarray((l + 1) * A * TH, (l + 2) * A * TH);
        expect(out.subarray(0, TH), where).toEqual(corrected.subarray(0, TH));
        for (let s = 1; s < A; s++) {
          expect(out.subarray(s * TH, (s + 1) * TH), `${where} stream ${s}`).toEqual(corrected.subarray(s * TH, (s + 1) * TH).map((x, i) => x + first[i]));
        }
      }
    }
  });

  it('without --all the file holds the golden set only, with the same values', async () => {
    const plain = await traceText(model, prompt.prompt_ids);
    expect(plain.map((t) => t.name)).toEqual(['input_ids', 'logits', 'last_hidden_state', 'inputs_embeds', 'per_layer_inputs', 'hidden_states']);
    for (const t of plain) expect(t.data, t.name).toEqual(tensors.get(t.name)!.data);
  });
});

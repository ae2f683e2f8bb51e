/**
 * The text decoder against the reference outputs in test/golden/text-tiny-{a,b}
 * (tolerances from test/golden/README.md: logits 5e-4, last_hidden_state 2e-4,
 * hidden_states 2e-3, per_layer_inputs / inputs_embeds 1e-5, generated ids exact).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { greedyGenerate } from '../../src/engine/greedy.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';
import type { SafetensorsFile } from '../../src/checkpoint/safetensors.js';

interface Generation { prompts: { prompt_ids: number[]; generated_ids: number[] }[] }

for (const name of ['text-tiny-a', 'text-tiny-b']) {
  describe(`golden ${name}`, () => {
    let model: Gemma3nTextModel;
    let golden: SafetensorsFile;
    beforeAll(async () => {
      ({ model } = await Gemma3nTextModel.load(goldenFolder(name), new TsKernels()));
      golden = await openSafetensors(join(GOLDEN, name, 'golden.safetensors'));
    });

    for (const seq of [0, 1]) {
      it(`sequence ${seq}: logits, hidden states, last hidden state, embeddings`, async () => {
        const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
        const got = new Map<string, Float32Array>();
        const res = await model.forward(ids, model.newCache(), {
          logits: 'all',
          trace: (n, d) => got.set(n, new Float32Array(d)),
        });
        const L = model.config.numHiddenLayers;
        expect(maxAbsDiff(got.get('inputs_embeds')!, await golden.readF32(`inputs_embeds.${seq}`))).toBeLessThan(1e-5);
        expect(maxAbsDiff(got.get('per_layer_inputs')!, await golden.readF32(`per_layer_inputs.${seq}`))).toBeLessThan(1e-5);
        const hs = await golden.readF32(`hidden_states.${seq}`);
        const per = hs.length / (L + 1);
        for (let l = 0; l <= L; l++) {
          const d = maxAbsDiff(got.get(`hidden_states.${l}`)!, hs.subarray(l * per, (l + 1) * per));
          expect(d, `hidden_states[${l}]`).toBeLessThan(2e-3);
        }
        expect(maxAbsDiff(got.get('last_hidden_state')!, await golden.readF32(`last_hidden_state.${seq}`))).toBeLessThan(2e-4);
        expect(maxAbsDiff(res.logits, await golden.readF32(`logits.${seq}`))).toBeLessThan(5e-4);
      });
    }

    it('greedy continuations match token for token, step logits within tolerance', async () => {
      const gen = JSON.parse(readFileSync(join(GOLDEN, name, 'generation.json'), 'utf8')) as Generation;
      for (const [p, prompt] of gen.prompts.entries()) {
        const stepLogits: Float32Array[] = [];
        const out = await greedyGenerate(model, prompt.prompt_ids, 16, { onLogits: (l) => stepLogits.push(new Float32Array(l)) });
        expect(out).toEqual(prompt.generated_ids);
        const ref = await golden.readF32(`gen.${p}.step_logits`);
        const V = model.config.vocabSize;
        for (let s = 0; s < 16; s++) expect(maxAbsDiff(stepLogits[s], ref.subarray(s * V, (s + 1) * V)), `step ${s}`).toBeLessThan(5e-4);
      }
    });
  });
}

/**
 * Text + image + audio end to end against test/golden/multimodal (the real transformers
 * Gemma3nForConditionalGeneration): merged embeddings, per-layer inputs, logits, hidden
 * states, and the 8-token greedy continuation. Tolerances from its README: logits 2e-3,
 * merged/image/audio embeddings 1e-4, hidden_states 1e-2, ids exact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Towers } from '../../src/engine/towers.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { argmax } from '../../src/model/generate.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import type { SafetensorsFile } from '../../src/model/safetensors.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';
import { withFormulaVisionTower } from './formula_store.js';

describe('multimodal golden (text + image + audio)', () => {
  let model: Gemma3nTextModel;
  let towers: Towers;
  let golden: SafetensorsFile;
  let ids: number[];
  let merged: Float32Array;

  beforeAll(async () => {
    const kernels = new TsKernels();
    const loaded = await Gemma3nTextModel.load(goldenFolder('multimodal'), kernels);
    model = loaded.model;
    towers = await Towers.load(withFormulaVisionTower(loaded.checkpoint), loaded.modelConfig, kernels);
    model.hardEmbedders = [towers.visionEmbedder!, towers.audioEmbedder!];
    golden = await openSafetensors(join(GOLDEN, 'multimodal', 'golden.safetensors'));
    ids = Array.from(await golden.readF32('input_ids'));
    const pixels = await openSafetensors(join(GOLDEN, 'vision', 'full', 'pixel_values.safetensors'));
    const features = await golden.readF32('input_features');
    const mask = Uint8Array.from(await golden.readF32('input_features_mask'));
    merged = await towers.mergedEmbeddings(model, ids, [
      { kind: 'image', pixelValues: await pixels.readF32('pixel_values') },
      { kind: 'audio', features: { features, mask, batch: 1, frames: mask.length, featureSize: 128 } },
    ]);
  }, 900_000);

  it('merges image and audio soft tokens into the prompt embeddings', async () => {
    expect(maxAbsDiff(merged, await golden.readF32('inputs_embeds_merged'))).toBeLessThan(1e-4);
  });

  it('logits, hidden states and per-layer inputs match', async () => {
    const got = new Map<string, Float32Array>();
    const { logits } = await model.forward(ids, model.newCache(), { logits: 'all', inputsEmbeds: merged, trace: (n, d) => got.set(n, new Float32Array(d)) });
    expect(maxAbsDiff(got.get('per_layer_inputs')!, await golden.readF32('per_layer_inputs'))).toBeLessThan(1e-4);
    expect(maxAbsDiff(logits, await golden.readF32('logits'))).toBeLessThan(2e-3);
    const hs = await golden.readF32('hidden_states');
    const L = model.config.numHiddenLayers, per = hs.length / (L + 1);
    for (let l = 0; l <= L; l++) expect(maxAbsDiff(got.get(`hidden_states.${l}`)!, hs.subarray(l * per, (l + 1) * per)), `hidden_states[${l}]`).toBeLessThan(1e-2);
    expect(maxAbsDiff(got.get('last_hidden_state')!, await golden.readF32('last_hidden_state'))).toBeLessThan(2e-3);
  });

  it('greedy continuation of 8 tokens equals the reference', async () => {
    const gen = JSON.parse(readFileSync(join(GOLDEN, 'multimodal', 'generation.json'), 'utf8')) as { generated_ids: number[] };
    const stepRef = await golden.readF32('gen.step_logits');
    const V = model.config.vocabSize;
    const cache = model.newCache();
    const out: number[] = [];
    let res = await model.forward(ids, cache, { inputsEmbeds: merged });
    for (let s = 0; s < 8; s++) {
      expect(maxAbsDiff(res.logits, stepRef.subarray(s * V, (s + 1) * V)), `step ${s}`).toBeLessThan(2e-3);
      out.push(argmax(res.logits));
      if (s < 7) res = await model.forward([out[s]], cache);
    }
    expect(out).toEqual(gen.generated_ids);
  });
});

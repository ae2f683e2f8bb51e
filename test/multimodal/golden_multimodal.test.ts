/**
 * Text + image + audio end to end against test/golden/multimodal (the real transformers
 * Gemma3nForConditionalGeneration): image features, merged embeddings, per-layer inputs,
 * logits, hidden states, and the 8-token greedy continuation, from a single checkpoint file
 * and from a sharded copy. Tolerances from its README: logits 2e-3, merged/image/audio
 * embeddings 1e-4, hidden_states 1e-2, ids exact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Towers } from '../../src/engine/towers.js';
import { MemoryFolder } from '../../src/io/byte_source.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { argmax } from '../../src/engine/greedy.js';
import { mergeSoftTokens } from '../../src/model/multimodal_merge.js';
import { writeSafetensors, type SafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';
import { withFormulaVisionTower } from './formula_store.js';

const DIR = join(GOLDEN, 'multimodal');

/** The multimodal checkpoint split over three shards with a model.safetensors.index.json. */
async function shardedFolder(): Promise<MemoryFolder> {
  const st = await openSafetensors(join(DIR, 'model.safetensors'));
  const names = [...st.tensors.keys()];
  const files = new Map<string, Uint8Array>([['config.json', readFileSync(join(DIR, 'config.json'))]]);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 3; s++) {
    const file = `model-0000${s + 1}-of-00003.safetensors`;
    const part = names.filter((_, i) => i % 3 === s);
    const tensors = [];
    for (const n of part) {
      const info = st.info(n);
      tensors.push({ name: n, dtype: info.dtype, shape: info.shape, data: await st.readBytes(n) });
      weightMap[n] = file;
    }
    files.set(file, writeSafetensors(tensors));
  }
  files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: weightMap })));
  return new MemoryFolder(files, 'multimodal-sharded');
}

describe('multimodal golden (text + image + audio)', () => {
  let kernels: Kernels;
  let golden: SafetensorsFile;
  let ids: number[];
  let imageEmbeddings: Float32Array;

  beforeAll(async () => {
    // The WASM kernels (held to the TS reference in test/kernels): the 435 G multiply-adds of
    // the MobileNet-V5 tower take minutes in plain TypeScript.
    kernels = await createNodeWasmKernels({ threads: 2 });
    golden = await openSafetensors(join(DIR, 'golden.safetensors'));
    ids = Array.from(await golden.readF32('input_ids'));
    const { modelConfig, checkpoint } = await Gemma3nTextModel.load(goldenFolder('multimodal'), kernels);
    const towers = await Towers.load(withFormulaVisionTower(checkpoint), modelConfig, kernels);
    const pixels = await openSafetensors(join(GOLDEN, 'vision', 'full', 'pixel_values.safetensors'));
    imageEmbeddings = await towers.imageEmbeddings({ pixelValues: await pixels.readF32('pixel_values') });
  }, 900_000);

  it('image features: tower → ·√2048 → embed_vision', async () => {
    expect(maxAbsDiff(imageEmbeddings, await golden.readF32('image_features'))).toBeLessThan(1e-4);
  });

  for (const layout of ['single file', 'sharded']) {
    it(`${layout}: merged embeddings, per-layer inputs, logits, hidden states, greedy continuation`, async () => {
      const folder = layout === 'sharded' ? await shardedFolder() : goldenFolder('multimodal');
      const { model, modelConfig, checkpoint } = await Gemma3nTextModel.load(folder, kernels);
      const towers = await Towers.load(checkpoint, modelConfig, kernels);
      model.hardEmbedders = [towers.visionEmbedder!, towers.audioEmbedder!];
      const features = await golden.readF32('input_features');
      const mask = Uint8Array.from(await golden.readF32('input_features_mask'));
      const audio = await towers.audioEmbeddings({ features: { features, mask, batch: 1, frames: mask.length, featureSize: 128 } });
      expect(maxAbsDiff(audio, await golden.readF32('audio_features_merged'))).toBeLessThan(1e-4);
      const merged = await mergeSoftTokens(model, ids, [
        { tokenId: modelConfig.imageTokenId!, embeddings: imageEmbeddings, what: 'image' },
        { tokenId: modelConfig.audioTokenId!, embeddings: audio, what: 'audio' },
      ]);
      expect(maxAbsDiff(merged, await golden.readF32('inputs_embeds_merged'))).toBeLessThan(1e-4);

      const got = new Map<string, Float32Array>();
      const { logits } = await model.forward(ids, model.newCache(), { logits: 'all', inputsEmbeds: merged, trace: (n, d) => got.set(n, new Float32Array(d)) });
      expect(maxAbsDiff(got.get('per_layer_inputs')!, await golden.readF32('per_layer_inputs'))).toBeLessThan(1e-4);
      expect(maxAbsDiff(logits, await golden.readF32('logits'))).toBeLessThan(2e-3);
      const hs = await golden.readF32('hidden_states');
      const L = model.config.numHiddenLayers, per = hs.length / (L + 1);
      for (let l = 0; l <= L; l++) expect(maxAbsDiff(got.get(`hidden_states.${l}`)!, hs.subarray(l * per, (l + 1) * per)), `hidden_states[${l}]`).toBeLessThan(1e-2);
      expect(maxAbsDiff(got.get('last_hidden_state')!, await golden.readF32('last_hidden_state'))).toBeLessThan(2e-3);

      // Greedy: the prefill uses the merged embeddings, then one token at a time.
      const gen = JSON.parse(readFileSync(join(DIR, 'generation.json'), 'utf8')) as { generated_ids: number[] };
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
      await checkpoint.close();
    });
  }
});

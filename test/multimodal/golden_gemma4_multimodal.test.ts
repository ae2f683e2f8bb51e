/**
 * Gemma 4 text + image + audio end to end against test/golden/gemma4/multimodal (the real
 * transformers Gemma4ForConditionalGeneration), from a single file and from a sharded copy.
 * Tolerances from its README: image/audio features, merged embeddings, per-layer inputs 1e-4;
 * logits, hidden states and step logits 3e-3; generated ids exact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGemma4Config } from '../../src/checkpoint/gemma4_config.js';
import type { SafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { Gemma4AudioFeatureExtractor } from '../../src/encoders/gemma4_audio/index.js';
import { Gemma4Multimodal } from '../../src/encoders/gemma4_multimodal.js';
import { preprocessGemma4Image } from '../../src/encoders/gemma4_vision/index.js';
import { decodePng } from '../../src/encoders/vision/image_decode.js';
import { argmax } from '../../src/engine/greedy.js';
import type { FileProvider } from '../../src/io/byte_source.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma4TextModel } from '../../src/model/gemma4_text_model.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors, shardedCopy } from '../helpers.js';

const DIR = join(GOLDEN, 'gemma4', 'multimodal');

async function i32(st: SafetensorsFile, name: string): Promise<number[]> {
  const b = await st.readBytes(name);
  return Array.from(new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}

describe('Gemma 4 multimodal golden (text + image + audio)', () => {
  for (const layout of ['single file', 'sharded']) {
    it(`${layout}: preprocessing, features, merged embeddings, per-layer inputs, logits, hidden states, 8-token greedy continuation`, async () => {
      const folder: FileProvider = layout === 'sharded' ? await shardedCopy(DIR, 3) : goldenFolder('gemma4/multimodal');
      const g = await openSafetensors(join(DIR, 'golden.safetensors'));
      const kernels = new TsKernels();
      const { model, modelConfig, checkpoint } = await Gemma4TextModel.load(folder, kernels);
      const media = await Gemma4Multimodal.load(checkpoint, kernels, modelConfig);

      // The media through our own processors: the image as the processor would (max_soft_tokens 70)...
      const image = preprocessGemma4Image(decodePng(readFileSync(join(DIR, 'image.png'))), { maxSoftTokens: 70 });
      expect(image.numSoftTokens).toBe(63);
      expect(Array.from(image.positionIds)).toEqual(await i32(g, 'image_position_ids'));
      const u8 = await g.readBytes('pixel_values_u8');
      const inv = Math.fround(1 / 255);
      expect(maxAbsDiff(image.pixelValues, Float32Array.from(u8, (v) => Math.fround(v * inv)))).toBe(0);
      // ...and the waveform through the feature extractor.
      const wave = await (await openSafetensors(join(DIR, 'waveform.safetensors'))).readF32('waveform');
      const f = new Gemma4AudioFeatureExtractor().extract([wave]);
      expect(Array.from(f.mask)).toEqual(Array.from(await g.readBytes('input_features_mask')));
      expect(maxAbsDiff(f.features, await g.readF32('input_features'))).toBeLessThan(2e-4);
      const audio = { features: await g.readF32('input_features'), mask: f.mask, frames: f.frames };

      const ids = await i32(g, 'input_ids');
      const traced = new Map<string, Float32Array>();
      const trace = (n: string, d: Float32Array) => traced.set(n, d.slice());
      const merged = await media.embedPrompt(model, ids, [image], [audio], trace);
      expect(maxAbsDiff(traced.get('image_features')!, await g.readF32('image_features'))).toBeLessThan(1e-4);
      expect(maxAbsDiff(traced.get('audio_features')!, await g.readF32('audio_features'))).toBeLessThan(1e-4);
      expect(maxAbsDiff(merged, await g.readF32('inputs_embeds_merged'))).toBeLessThan(1e-4);

      const res = await model.forward(ids, model.newCache(), { logits: 'all', inputsEmbeds: merged, trace });
      expect(maxAbsDiff(traced.get('per_layer_inputs')!, await g.readF32('per_layer_inputs'))).toBeLessThan(1e-4);
      expect(maxAbsDiff(res.logits, await g.readF32('logits'))).toBeLessThan(3e-3);
      const hs = await g.readF32('hidden_states');
      const per = hs.length / 11;
      for (let l = 0; l <= 10; l++) expect(maxAbsDiff(traced.get(`hidden_states.${l}`)!, hs.subarray(l * per, (l + 1) * per)), `hidden_states[${l}]`).toBeLessThan(3e-3);

      // Greedy: media in the prefill only, then one token at a time through the KV cache.
      const gen = JSON.parse(readFileSync(join(DIR, 'generation.json'), 'utf8')) as { generated_ids: number[] };
      const step = await g.readF32('gen.step_logits');
      const cache = model.newCache();
      let logits = (await model.forward(ids, cache, { inputsEmbeds: merged })).logits;
      const out: number[] = [];
      for (let s = 0; s < 8; s++) {
        expect(maxAbsDiff(logits, step.subarray(s * 512, (s + 1) * 512)), `step ${s}`).toBeLessThan(3e-3);
        out.push(argmax(logits));
        if (s < 7) logits = (await model.forward([out[s]], cache)).logits;
      }
      expect(out).toEqual(gen.generated_ids);
    });
  }

  it('a prompt whose placeholders do not match its media is refused before any tower runs', async () => {
    const kernels = new TsKernels();
    const { model, modelConfig, checkpoint } = await Gemma4TextModel.load(goldenFolder('gemma4/multimodal'), kernels);
    const media = await Gemma4Multimodal.load(checkpoint, kernels, modelConfig);
    let encoded = 0;
    const tower = media.vision!.tower;
    const orig = tower.encode.bind(tower);
    tower.encode = (...a) => { encoded++; return orig(...a); };
    const image = { pixelValues: new Float32Array(630 * 768), positionIds: new Int32Array(630 * 2).fill(-1), maxPatches: 630, numSoftTokens: 63 };
    await expect(media.embedPrompt(model, [2, 250, 500, 500, 502], [image], [])).rejects.toThrow(/2 image token\(s\) but the 1 image\(s\) give 63 soft tokens/);
    expect(encoded).toBe(0);
    expect(parseGemma4Config(readFileSync(join(DIR, 'config.json'), 'utf8')).tokenIds.image_token_id).toBe(500);
  });
});

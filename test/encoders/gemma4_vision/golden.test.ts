/** Gemma 4 vision: the image processor and the tower against test/golden/gemma4/vision (tolerances from its README). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../../src/checkpoint/checkpoint.js';
import type { SafetensorsFile } from '../../../src/checkpoint/safetensors.js';
import { decodePng } from '../../../src/encoders/vision/image_decode.js';
import {
  AxialRope, Gemma4SoftEmbedder, Gemma4VisionTower, gemma4TargetSize, parseGemma4VisionConfig, planarRgb, preprocessGemma4Image, resizeBicubicU8,
} from '../../../src/encoders/gemma4_vision/index.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../../helpers.js';

const DIR = join(GOLDEN, 'gemma4', 'vision');
const IMAGES = ['rgb_640x480', 'rgb_300x900', 'rgba_1200x300', 'gray_37x23'];

async function i32(st: SafetensorsFile, name: string): Promise<Int32Array> {
  const b = await st.readBytes(name);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('Gemma 4 image processor (preprocess/)', () => {
  let st: SafetensorsFile;
  const meta = JSON.parse(readFileSync(join(DIR, 'preprocess', 'meta.json'), 'utf8')) as {
    budgets: { tag: string; max_soft_tokens: number; per_image: Record<string, { resized_hw: [number, number]; source_hw: [number, number]; num_soft_tokens: number; pixel_values_f64sum: number; pixel_values_first16: number[] }> }[];
  };
  beforeAll(async () => { st = await openSafetensors(join(DIR, 'preprocess', 'preprocess.safetensors')); });

  it('target sizes equal the reference for every image and budget', () => {
    for (const b of meta.budgets) {
      for (const [name, m] of Object.entries(b.per_image)) {
        expect(gemma4TargetSize(m.source_hw[0], m.source_hw[1], 16, b.max_soft_tokens * 9, 3), `${b.tag}.${name}`).toEqual(m.resized_hw);
      }
    }
  });

  for (const tag of ['t280', 't70']) {
    for (const name of IMAGES) {
      it(`${tag}.${name}: resize bit-exact, position ids and token count exact, pixel values as the processor's`, async () => {
        const b = meta.budgets.find((x) => x.tag === tag)!;
        const m = b.per_image[name];
        const img = decodePng(readFileSync(join(DIR, 'preprocess', `${name}.png`)));
        const out = preprocessGemma4Image(img, { maxSoftTokens: b.max_soft_tokens });
        expect([out.height, out.width]).toEqual(m.resized_hw);
        const want = await st.readBytes(`${tag}.${name}.resized_u8`);
        expect(out.resized.length).toBe(want.length);
        let diff = 0;
        for (let i = 0; i < want.length; i++) if (out.resized[i] !== want[i]) diff++;
        expect(diff).toBe(0);
        expect(Array.from(out.positionIds)).toEqual(Array.from(await i32(st, `${tag}.${name}.image_position_ids`)));
        expect(out.numSoftTokens).toBe((await i32(st, `${tag}.${name}.num_soft_tokens`))[0]);
        expect(out.numSoftTokens).toBe(m.num_soft_tokens);
        expect(Array.from(out.pixelValues.subarray(0, 16))).toEqual(m.pixel_values_first16);
        let sum = 0;
        for (const v of out.pixelValues) sum += v;
        expect(Math.abs(sum - m.pixel_values_f64sum)).toBeLessThan(1e-6 * m.pixel_values_f64sum);
      });
    }
  }

  it('an identity-size image is not resized; bad sizes and budgets are refused', () => {
    const planar = new Uint8Array(3 * 4 * 5).map((_, i) => i);
    expect(resizeBicubicU8(planar, 3, 4, 5, 4, 5)).toEqual(planar);
    expect(() => preprocessGemma4Image({ width: 10, height: 10, data: new Uint8Array(300) }, { maxSoftTokens: 100 })).toThrow(/maxSoftTokens must be one of/);
    expect(() => planarRgb({ width: 2, height: 2, data: new Uint8Array(5) })).toThrow(/5 bytes/);
  });
});

describe('Gemma 4 vision tower (tower-tiny/)', () => {
  let g: SafetensorsFile;
  let tower: Gemma4VisionTower;
  let embedder: Gemma4SoftEmbedder;
  const kernels = new TsKernels();
  beforeAll(async () => {
    g = await openSafetensors(join(DIR, 'tower-tiny', 'golden.safetensors'));
    const folder = goldenFolder('gemma4/vision/tower-tiny');
    const raw = JSON.parse(await folder.readText('config.json')) as { vision_config: unknown; text_config: { hidden_size: number } };
    const cfg = parseGemma4VisionConfig(raw.vision_config);
    const store = await Checkpoint.open(folder);
    tower = await Gemma4VisionTower.load(store, kernels, cfg);
    embedder = await Gemma4SoftEmbedder.load(store, kernels, 'model.embed_vision', cfg.hiddenSize, raw.text_config.hidden_size, cfg.rmsNormEps);
  });

  it('RoPE inverse frequencies and cos/sin tables equal aux.*', async () => {
    const rope = new AxialRope(16, 100);
    expect(maxAbsDiff(rope.invFreq, await g.readF32('aux.inv_freq'))).toBe(0);
    const pos = await i32(g, 'image_position_ids');
    const wantCos = await g.readF32('aux.cos'), wantSin = await g.readF32('aux.sin');
    for (let b = 0; b < 3; b++) {
      const { cos, sin } = rope.tables(pos.subarray(b * 630 * 2, (b + 1) * 630 * 2), 630);
      expect(maxAbsDiff(cos, wantCos.subarray(b * 630 * 16, (b + 1) * 630 * 16))).toBeLessThan(1e-6);
      expect(maxAbsDiff(sin, wantSin.subarray(b * 630 * 16, (b + 1) * 630 * 16))).toBeLessThan(1e-6);
    }
  });

  it('patch embeddings, every encoder layer, pooled cells, mask, soft tokens and image features within tolerance', async () => {
    const u8 = await g.readBytes('pixel_values_u8');
    const pos = await i32(g, 'image_position_ids');
    const counts = await i32(g, 'num_soft_tokens_per_image');
    const wantPatch = await g.readF32('patch_embeddings');
    const wantLayers = await g.readF32('encoder_layer_outputs');
    const wantPooled = await g.readF32('pooled');
    const wantMask = await g.readBytes('pooler_mask');
    const wantLast = await g.readF32('last_hidden_state');
    const wantFeat = await g.readF32('image_features');
    const D = 32, M = 630, inv = Math.fround(1 / 255);
    const soft: Float32Array[] = [];
    let row = 0;
    for (let b = 0; b < 3; b++) {
      const pixelValues = new Float32Array(M * 768);
      for (let i = 0; i < pixelValues.length; i++) pixelValues[i] = Math.fround(u8[b * M * 768 + i] * inv);
      const traced = new Map<string, Float32Array>();
      const out = tower.encode({ pixelValues, positionIds: pos.slice(b * M * 2, (b + 1) * M * 2), maxPatches: M }, (name, data) => traced.set(name, data.slice()));
      const N = counts[b] * 9;
      expect(maxAbsDiff(traced.get('vision.patch_embeddings')!, wantPatch.subarray(b * M * D, b * M * D + N * D))).toBeLessThan(1e-5);
      for (let l = 0; l < 2; l++) {
        const want = wantLayers.subarray((l * 3 + b) * M * D, (l * 3 + b) * M * D + N * D);
        expect(maxAbsDiff(traced.get(`vision.encoder.layers.${l}`)!, want), `layer ${l}`).toBeLessThan(5e-4);
      }
      expect(maxAbsDiff(out.pooled, wantPooled.subarray(b * 70 * D, (b + 1) * 70 * D))).toBeLessThan(5e-4);
      expect(Array.from(out.poolerMask)).toEqual(Array.from(wantMask.subarray(b * 70, (b + 1) * 70)));
      expect(out.numSoftTokens).toBe(counts[b]);
      expect(maxAbsDiff(out.softTokens, wantLast.subarray(row * D, (row + counts[b]) * D))).toBeLessThan(5e-4);
      const feat = embedder.embed(out.softTokens, out.numSoftTokens);
      expect(maxAbsDiff(feat, wantFeat.subarray(row * 48, (row + counts[b]) * 48))).toBeLessThan(1e-4);
      soft.push(out.softTokens);
      row += counts[b];
    }
    expect(row).toBe(183);
  });

  it('refuses inputs of the wrong shape and positions past the tables', () => {
    expect(() => tower.encode({ pixelValues: new Float32Array(10), positionIds: new Int32Array(18), maxPatches: 9 })).toThrow(/pixelValues has 10 values/);
    const pos = new Int32Array(18).fill(-1);
    pos[0] = 64; pos[1] = 0;
    expect(() => tower.encode({ pixelValues: new Float32Array(9 * 768), positionIds: pos, maxPatches: 9 })).toThrow(/outside the 64-entry position tables/);
    expect(() => tower.encode({ pixelValues: new Float32Array(9 * 768), positionIds: new Int32Array(18).fill(-1), maxPatches: 9 })).toThrow(/no patches/);
  });
});

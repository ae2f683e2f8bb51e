/**
 * The public API (loadVisionTower / encodeImage / embedVision / traceVision) on the golden
 * mini encoder (96×96 → 2×2 = 4 soft tokens), with embed_vision weights made up here and the
 * embedder recomputed independently in float64 from the transformers source:
 *   get_image_features: reshape(B, 2048, N).permute(0, 2, 1) · 2048^½
 *   embed_vision: RMSNorm(soft_embedding_norm, eps 1e-6) → Linear(2048 → H) → RMSNorm(no scale)
 */
import { describe, expect, it } from 'vitest';
import { encodeImage, loadVisionTower, preprocessImage, preprocessRgb, traceVision, decodeImage, type EncoderConfig, type VisionWeights } from '../../../src/encoders/vision/index.js';
import { MemoryFolder } from '../../../src/io/byte_source.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { Checkpoint } from '../../../src/checkpoint/checkpoint.js';
import { writeSafetensors } from '../../../src/checkpoint/safetensors.js';
import { goldenBytes, openGolden, stReader } from './helpers.js';
import { maxAbsDiff, mulberry32 } from '../../helpers.js';

const MINI: EncoderConfig = {
  archDef: [['er_r1_k3_s2_e4_c16', 'er_r1_k3_s1_e4_c16'], ['uir_r1_a3_k5_s2_e6_c24', 'uir_r1_a5_k0_s1_e4_c24', 'uir_r1_a3_k0_s1_e4_c24'],
    ['uir_r1_a5_k5_s2_e6_c32', 'uir_r1_a0_k0_s1_e1_c32', 'mqa_r1_k3_h2_v2_s1_d8_c32', 'uir_r1_a0_k0_s1_e2_c32'],
    ['uir_r1_a5_k5_s2_e6_c48', 'mqa_r1_k3_h2_s1_d12_c48', 'uir_r1_a0_k0_s1_e2_c48']],
  stemSize: 8, msfaIndices: [-2, -1], msfaOutputResolution: 2, numFeatures: 2048, msfaExpansion: 2, layerScale: true,
};

/** Uniform [-0.5, 0.5). */
function rng(seed: number): () => number {
  const u = mulberry32(seed);
  return () => u() - 0.5;
}

describe('vision API on the mini encoder', () => {
  it('traceVision: pixel_values, soft_tokens = permuted features, embed_soft = embed_vision(soft · √2048)', async () => {
    const D = 2048, H = 64, N = 4;
    const r = rng(7);
    const embed = new Map<string, Float32Array>([
      ['model.embed_vision.embedding.weight', Float32Array.from({ length: 128 * D }, r)],
      ['model.embed_vision.hard_embedding_norm.weight', Float32Array.from({ length: D }, () => 1 + r())],
      ['model.embed_vision.soft_embedding_norm.weight', Float32Array.from({ length: D }, () => 1 + r())],
      ['model.embed_vision.embedding_projection.weight', Float32Array.from({ length: H * D }, () => r() * 0.05)],
    ]);
    const mini = stReader(await openGolden('blocks/mini_encoder/weights.safetensors'));
    const weights: VisionWeights = {
      readF32: async (name, shape) => {
        const e = embed.get(name);
        if (e) return e;
        return mini.readF32(name.replace(/^model\.vision_tower\.timm_model\./, ''), shape);
      },
      has: (name) => embed.has(name) || name.startsWith('model.vision_tower.'),
      info: async (name) => ({ shape: name.endsWith('embedding_projection.weight') ? [H, D] : [] }),
    };
    const tower = await loadVisionTower(weights, new TsKernels(), { config: MINI });
    expect(tower.embedder).not.toBeNull();

    const io = await openGolden('blocks/mini_encoder/io.safetensors');
    const pixels = await io.readF32('input');
    const out = traceVision({ pixelValues: pixels }, tower, { intermediates: true });
    expect(out.get('vision.pixel_values')!.shape).toEqual([1, 3, 96, 96]);
    expect(out.get('vision.stage3')!.shape).toEqual([1, 48, 3, 3]);

    // soft_tokens[t, c] = features_nchw[c, t]
    const feats = await io.readF32('output'); // [1, 2048, 2, 2]
    const soft = out.get('vision.soft_tokens')!;
    expect(soft.shape).toEqual([1, N, D]);
    const want = new Float32Array(N * D);
    for (let t = 0; t < N; t++) for (let c = 0; c < D; c++) want[t * D + c] = feats[c * N + t];
    expect(maxAbsDiff(soft.data, want)).toBeLessThan(1e-5);

    // embed_soft from the golden soft tokens, float64.
    const softW = embed.get('model.embed_vision.soft_embedding_norm.weight')!, P = embed.get('model.embed_vision.embedding_projection.weight')!;
    const ref = new Float64Array(N * H);
    for (let t = 0; t < N; t++) {
      const x = Array.from(want.subarray(t * D, (t + 1) * D), (v) => v * Math.sqrt(D));
      const ms = x.reduce((s, v) => s + v * v, 0) / D;
      const xn = x.map((v, i) => (v / Math.sqrt(ms + 1e-6)) * softW[i]);
      const y = Array.from({ length: H }, (_, o) => xn.reduce((s, v, i) => s + v * P[o * D + i], 0));
      const ms2 = y.reduce((s, v) => s + v * v, 0) / H;
      for (let o = 0; o < H; o++) ref[t * H + o] = y[o] / Math.sqrt(ms2 + 1e-6);
    }
    const e = out.get('vision.embed_soft')!;
    expect(e.shape).toEqual([1, N, H]);
    expect(maxAbsDiff(e.data, ref)).toBeLessThan(1e-4); // O(1) values; tower error 1e-5 relative amplified by nothing larger
  });

  it('without embed_vision weights: no embed_soft', async () => {
    const mini = stReader(await openGolden('blocks/mini_encoder/weights.safetensors'));
    const weights: VisionWeights = {
      readF32: (name, shape) => mini.readF32(name.replace(/^model\.vision_tower\.timm_model\./, ''), shape),
      has: (name) => name.startsWith('model.vision_tower.'),
    };
    const tower = await loadVisionTower(weights, new TsKernels(), { config: MINI });
    expect(tower.embedder).toBeNull();
    const io = await openGolden('blocks/mini_encoder/io.safetensors');
    const out = traceVision({ pixelValues: await io.readF32('input') }, tower);
    expect([...out.keys()]).toEqual(['vision.pixel_values', 'vision.soft_tokens']);
  });
});

describe('vision API: real checkpoint names, sharded checkpoint, image inputs', () => {
  it('loads model.vision_tower.timm_model.* from a two-shard checkpoint with an index and matches the golden', async () => {
    const st = await openGolden('blocks/mini_encoder/weights.safetensors');
    const names = [...st.tensors.keys()];
    const shards: Record<string, string> = {};
    const files = new Map<string, Uint8Array>();
    for (const [k, part] of [names.slice(0, 40), names.slice(40)].entries()) {
      const file = `model-0000${k + 1}-of-00002.safetensors`;
      const tensors = [];
      for (const n of part) {
        const info = st.info(n);
        tensors.push({ name: `model.vision_tower.timm_model.${n}`, dtype: info.dtype, shape: info.shape, data: await st.readBytes(n) });
        shards[`model.vision_tower.timm_model.${n}`] = file;
      }
      files.set(file, writeSafetensors(tensors));
    }
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: shards })));
    const ckpt = await Checkpoint.open(new MemoryFolder(files));
    const tower = await loadVisionTower(ckpt, new TsKernels(), { config: MINI });
    expect(tower.embedder).toBeNull();
    const io = await openGolden('blocks/mini_encoder/io.safetensors');
    const soft = encodeImage(tower, await io.readF32('input'));
    const feats = await io.readF32('output'); // [1, 2048, 2, 2]
    let err = 0;
    for (let t = 0; t < 4; t++) for (let c = 0; c < 2048; c++) err = Math.max(err, Math.abs(soft[t * 2048 + c] - feats[c * 4 + t]));
    expect(err).toBeLessThan(1e-5);
  });

  it('preprocessImage takes file bytes, an RgbImage or canvas-style RGBA ImageData alike', () => {
    const bytes = goldenBytes('preprocess/rgb_64x48.png');
    const rgb = decodeImage(bytes);
    const rgba = new Uint8ClampedArray(rgb.width * rgb.height * 4);
    for (let i = 0; i < rgb.width * rgb.height; i++) rgba.set([rgb.data[3 * i], rgb.data[3 * i + 1], rgb.data[3 * i + 2], 77], 4 * i);
    const want = preprocessRgb(rgb);
    // (maxAbsDiff, not toEqual: deep-equal over 1.7 M floats takes minutes)
    expect(maxAbsDiff(preprocessImage(bytes), want)).toBe(0);
    expect(maxAbsDiff(preprocessImage(rgb), want)).toBe(0);
    expect(maxAbsDiff(preprocessImage({ width: rgb.width, height: rgb.height, data: rgba }), want)).toBe(0);
  });
});

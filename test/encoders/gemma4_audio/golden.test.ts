/** Gemma 4 audio: feature extractor and tower against test/golden/gemma4/audio (tolerances from its README). */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../../src/checkpoint/checkpoint.js';
import type { SafetensorsFile } from '../../../src/checkpoint/safetensors.js';
import { Gemma4AudioFeatureExtractor, Gemma4AudioTower, Gemma4SoftEmbedder, gemma4AudioTokenCount, parseGemma4AudioConfig, relativePositionSinusoid } from '../../../src/encoders/gemma4_audio/index.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../../helpers.js';

const DIR = join(GOLDEN, 'gemma4', 'audio');

/** max |a − b| over the rows r < n of [rows, dim] arrays that `mask` marks valid. */
function maxDiffValid(a: Float32Array, b: Float32Array, mask: ArrayLike<number>, dim: number): number {
  let m = 0;
  for (let r = 0; r < mask.length; r++) if (mask[r]) m = Math.max(m, maxAbsDiff(a.subarray(r * dim, (r + 1) * dim), b.subarray(r * dim, (r + 1) * dim)));
  return m;
}

describe('Gemma 4 audio feature extractor (features/)', () => {
  let st: SafetensorsFile;
  const fe = new Gemma4AudioFeatureExtractor();
  beforeAll(async () => { st = await openSafetensors(join(DIR, 'features', 'features.safetensors')); });

  it('window and mel filters equal aux.*', async () => {
    expect(maxAbsDiff(fe.window, await st.readF32('aux.window'))).toBe(0);
    expect(maxAbsDiff(fe.melFilters, await st.readF32('aux.mel_filters'))).toBeLessThan(1e-6);
  });

  for (const clip of ['chirp_1p27s', 'twotone_0p83s']) {
    it(`${clip} alone: features within 2e-4, mask exact, invalid frames 0`, async () => {
      const out = fe.extract([await st.readF32(`${clip}.waveform`)]);
      const want = await st.readF32(`${clip}.input_features`);
      const wantMask = await st.readBytes(`${clip}.input_features_mask`);
      expect(out.frames * 128).toBe(want.length);
      expect(Array.from(out.mask)).toEqual(Array.from(wantMask));
      expect(maxAbsDiff(out.features, want)).toBeLessThan(2e-4);
    });
  }

  it('a batch pads to the longest (multiple of 128) and masks each clip from its frame ends', async () => {
    const out = fe.extract([await st.readF32('chirp_1p27s.waveform'), await st.readF32('twotone_0p83s.waveform')]);
    expect(maxAbsDiff(out.features, await st.readF32('batch.input_features'))).toBeLessThan(2e-4);
    expect(Array.from(out.mask)).toEqual(Array.from(await st.readBytes('batch.input_features_mask')));
    expect(() => fe.extract([])).toThrow(/no waveforms/);
  });
});

describe('Gemma 4 audio tower (tower-tiny/)', () => {
  let g: SafetensorsFile;
  let tower: Gemma4AudioTower;
  let embedder: Gemma4SoftEmbedder;
  beforeAll(async () => {
    g = await openSafetensors(join(DIR, 'tower-tiny', 'golden.safetensors'));
    const folder = goldenFolder('gemma4/audio/tower-tiny');
    const raw = JSON.parse(await folder.readText('config.json')) as { audio_config: unknown; text_config: { hidden_size: number } };
    const cfg = parseGemma4AudioConfig(raw.audio_config);
    const store = await Checkpoint.open(folder);
    const kernels = new TsKernels();
    tower = await Gemma4AudioTower.load(store, kernels, cfg);
    embedder = await Gemma4SoftEmbedder.load(store, kernels, 'model.embed_audio', cfg.outputProjDims, raw.text_config.hidden_size, cfg.rmsNormEps);
  });

  it('the relative-position sinusoids equal rel_pos_embeddings (row j ↔ distance C//2 − j)', async () => {
    const want = await g.readF32('rel_pos_embeddings');
    for (let j = 0; j < 5; j++) expect(maxAbsDiff(relativePositionSinusoid(4 - j, 32), want.subarray(j * 32, (j + 1) * 32))).toBeLessThan(1e-6);
  });

  it('subsampler, layer 0 sub-blocks, every layer, output_proj, masks and embed_audio within 1e-4 on valid steps', async () => {
    const feats = await g.readF32('input_features'), fmask = await g.readBytes('input_features_mask');
    const wantMask = await g.readBytes('output_mask');
    const wantSscp = await g.readF32('sscp.out'), wantL1 = await g.readF32('sscp.layer1_out');
    const wantLayers = await g.readF32('layer_outputs'), wantLast = await g.readF32('last_hidden_state');
    const wantEmbed = await g.readF32('audio_features_valid');
    const sub = { ff1: await g.readF32('layers.0.feed_forward1_out'), attn: await g.readF32('layers.0.self_attn_out'), blk: await g.readF32('layers.0.attn_block_out'), lconv: await g.readF32('layers.0.lconv1d_out'), ff2: await g.readF32('layers.0.feed_forward2_out') };
    let row = 0;
    for (let b = 0; b < 2; b++) {
      const traced = new Map<string, Float32Array>();
      const out = tower.encode(feats.slice(b * 127 * 128, (b + 1) * 127 * 128), fmask.slice(b * 127, (b + 1) * 127), 127, (n, d) => traced.set(n, d.slice()));
      const m = wantMask.subarray(b * 32, (b + 1) * 32);
      expect(Array.from(out.mask)).toEqual(Array.from(m));
      // sscp.layer1_out is NCHW [8, 32(time), 32(freq)]; ours is [time, freq, channel]
      const l1 = traced.get('audio.sscp.layer1')!, wl1 = wantL1.subarray(b * 8 * 32 * 32, (b + 1) * 8 * 32 * 32);
      let d1 = 0;
      for (let t = 0; t < 32; t++) if (m[t]) for (let f = 0; f < 32; f++) for (let c = 0; c < 8; c++) d1 = Math.max(d1, Math.abs(l1[(t * 32 + f) * 8 + c] - wl1[(c * 32 + t) * 32 + f]));
      expect(d1).toBeLessThan(1e-4);
      const slice = (a: Float32Array, dim: number) => a.subarray(b * 32 * dim, (b + 1) * 32 * dim);
      expect(maxDiffValid(traced.get('audio.sscp.out')!, slice(wantSscp, 32), m, 32)).toBeLessThan(1e-4);
      expect(maxDiffValid(traced.get('audio.layers.0.feed_forward1')!, slice(sub.ff1, 32), m, 32)).toBeLessThan(1e-4);
      expect(maxDiffValid(traced.get('audio.layers.0.self_attn')!, slice(sub.attn, 32), m, 32)).toBeLessThan(1e-4);
      expect(maxDiffValid(traced.get('audio.layers.0.attn_block')!, slice(sub.blk, 32), m, 32)).toBeLessThan(1e-4);
      expect(maxDiffValid(traced.get('audio.layers.0.lconv1d')!, slice(sub.lconv, 32), m, 32)).toBeLessThan(1e-4);
      expect(maxDiffValid(traced.get('audio.layers.0.feed_forward2')!, slice(sub.ff2, 32), m, 32)).toBeLessThan(1e-4);
      for (let l = 0; l < 2; l++) {
        expect(maxDiffValid(traced.get(`audio.layers.${l}`)!, wantLayers.subarray((l * 2 + b) * 32 * 32, (l * 2 + b + 1) * 32 * 32), m, 32), `layer ${l}`).toBeLessThan(1e-4);
      }
      expect(maxDiffValid(out.lastHiddenState, slice(wantLast, 40), m, 40)).toBeLessThan(1e-4);
      const emb = embedder.embed(out.validRows, out.numValid);
      expect(maxAbsDiff(emb, wantEmbed.subarray(row * 48, (row + out.numValid) * 48))).toBeLessThan(1e-4);
      expect(gemma4AudioTokenCount(fmask.subarray(b * 127, (b + 1) * 127))).toBe(out.numValid);
      row += out.numValid;
    }
    expect(row).toBe(53);
  });

  it('refuses features of the wrong shape', () => {
    expect(() => tower.encode(new Float32Array(10), new Uint8Array(1), 1)).toThrow(/features has 10 values/);
    expect(() => tower.encode(new Float32Array(2 * 128), new Uint8Array(2), 2)).toThrow(/too short/);
  });
});

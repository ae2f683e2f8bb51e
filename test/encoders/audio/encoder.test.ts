import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { NodeFolder } from '../../../src/node/fs_folder.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { AudioModel } from '../../../src/encoders/audio/model.js';
import { traceAudio } from '../../../src/encoders/audio/trace.js';
import { loadGolden, get, GOLDEN_DIR } from './golden.js';
import { maxAbsDiff } from '../../helpers.js';

// README "Suggested check for a float32 implementation": atol 1e-4 given the stored features,
// about 1e-3 end to end from the waveform. Masks and shapes exact.
const ATOL = 1e-4;
const ATOL_END_TO_END = 1e-3;

const g = await loadGolden('encoder-tiny/golden.safetensors');
const feats = await loadGolden('features/features.safetensors');
const model = await AudioModel.open(new NodeFolder(join(GOLDEN_DIR, 'encoder-tiny')), new TsKernels());

const INTERMEDIATES = [
  'sscp.conv_0_out', 'sscp.conv_1_out', 'sscp.out',
  'conformer.0.ffw_layer_start_out', 'conformer.0.attention.attn_out', 'conformer.0.attention_out',
  'conformer.0.lconv1d_out', 'conformer.0.ffw_layer_end_out', 'conformer.0.out', 'conformer.1.out',
];

function run(X: 'A' | 'B') {
  const f = get(g, `${X}.input_features`), m = get(g, `${X}.input_features_mask`);
  const [B, T] = f.shape;
  const taps = new Map<string, { shape: number[]; items: Float32Array[] }>();
  const enc = model.encoder.encode(Float32Array.from(f.data), Uint8Array.from(m.data), B, T, (name, data, shape) => {
    // Traced clip by clip, clip 0 first.
    if (!taps.has(name)) taps.set(name, { shape, items: [] });
    taps.get(name)!.items.push(Float32Array.from(data));
  });
  const stacked = (name: string) => {
    const t = taps.get(name)!;
    const out = new Float32Array(t.items.reduce((n, a) => n + a.length, 0));
    t.items.forEach((a, b) => out.set(a, b * a.length));
    return { shape: [B, ...t.shape], data: out };
  };
  return { enc, stacked, B, T, mask: m.data };
}

describe.each(['A', 'B'] as const)('audio encoder vs golden, input %s', (X) => {
  const { enc, stacked } = run(X);

  it.each(INTERMEDIATES)('intermediate %s', (name) => {
    const got = stacked(name), want = get(g, `${X}.${name}`);
    expect(got.shape).toEqual(want.shape);
    // Padded steps included: the uniform softmax of fully masked rows is reproduced too.
    expect(maxAbsDiff(got.data, want.data)).toBeLessThan(ATOL);
  });

  it('last_hidden_state and audio_mel_mask', () => {
    const want = get(g, `${X}.last_hidden_state`);
    expect([enc.batch, enc.steps, enc.hiddenSize]).toEqual(want.shape);
    expect(maxAbsDiff(enc.hidden, want.data)).toBeLessThan(ATOL);
    expect(maxAbsDiff(enc.hidden, get(g, `${X}.last_hidden_state_f64`).data)).toBeLessThan(ATOL);
    expect(Array.from(enc.paddedMask)).toEqual(Array.from(get(g, `${X}.audio_mel_mask`).data));
    // Final outputs are exact zeros at padded steps.
    for (let i = 0; i < enc.batch * enc.steps; i++) {
      if (enc.paddedMask[i]) expect(enc.hidden.subarray(i * enc.hiddenSize, (i + 1) * enc.hiddenSize).every((v) => v === 0)).toBe(true);
    }
  });

  it('embed_audio soft and hard paths, and the prompt merge', () => {
    const soft = model.embed(enc);
    expect(maxAbsDiff(soft, get(g, `${X}.embed_audio_soft`).data)).toBeLessThan(ATOL);
    expect(maxAbsDiff(soft, get(g, `${X}.embed_audio_soft_f64`).data)).toBeLessThan(ATOL);
    expect(maxAbsDiff(model.paddingEmbedding(), get(g, `${X}.padding_embedding`).data)).toBeLessThan(ATOL);
    const ids = Array.from({ length: 16 }, (_, i) => 144 + i);
    expect(maxAbsDiff(model.embedder.embedIds(ids), get(g, `${X}.embed_audio_hard_all`).data)).toBeLessThan(ATOL);
    const merged = get(g, `${X}.audio_features_merged`);
    expect(merged.shape).toEqual([enc.batch, 20, 24]);
    expect(maxAbsDiff(model.mergeForPrompt(enc, soft), merged.data)).toBeLessThan(ATOL);
  });
});

describe('audio path end to end from the waveform', () => {
  const wave = (n: string) => Float32Array.from(get(feats, `${n}.waveform`).data);

  it('A: batch [chirp, twotone] (T_sub 59 is not a multiple of chunk 4; item 0 mostly padding)', () => {
    const t = traceAudio(model, [wave('chirp_1p0s'), wave('twotone_2p37s')]);
    expect(maxAbsDiff(t.get('audio.input_features')!.data, get(g, 'A.input_features').data)).toBeLessThan(2e-3);
    expect(Array.from(t.get('audio.input_features_mask')!.data)).toEqual(Array.from(get(g, 'A.input_features_mask').data));
    const h = t.get('audio.last_hidden_state')!;
    expect(h.shape).toEqual([2, 15, 32]);
    expect(maxAbsDiff(h.data, get(g, 'A.last_hidden_state').data)).toBeLessThan(ATOL_END_TO_END);
    expect(Array.from(t.get('audio.mask')!.data)).toEqual(Array.from(get(g, 'A.audio_mel_mask').data));
    const e = t.get('audio.embed_soft')!;
    expect(e.shape).toEqual([2, 15, 24]);
    expect(maxAbsDiff(e.data, get(g, 'A.embed_audio_soft').data)).toBeLessThan(ATOL_END_TO_END);
  });

  it('B: int16range / 32768 alone, with dtypes and names of the trace', () => {
    const w = Float32Array.from(get(feats, 'int16range_0p73s.waveform_int16').data, (v) => v / 32768);
    const t = traceAudio(model, [w], { intermediates: true });
    expect([...t.keys()].filter((k) => !k.startsWith('audio.sscp') && !k.startsWith('audio.conformer'))).toEqual([
      'audio.input_features', 'audio.last_hidden_state', 'audio.embed_soft', 'audio.input_features_mask', 'audio.mask',
    ]);
    expect(t.get('audio.input_features_mask')!.dtype).toBe('BOOL');
    expect(t.get('audio.mask')!.dtype).toBe('BOOL');
    expect(maxAbsDiff(t.get('audio.input_features')!.data, get(g, 'B.input_features').data)).toBeLessThan(2e-3);
    expect(maxAbsDiff(t.get('audio.last_hidden_state')!.data, get(g, 'B.last_hidden_state').data)).toBeLessThan(ATOL_END_TO_END);
    expect(maxAbsDiff(t.get('audio.embed_soft')!.data, get(g, 'B.embed_audio_soft').data)).toBeLessThan(ATOL_END_TO_END);
    expect(t.get('audio.conformer.0.attention.attn_out')!.shape).toEqual([1, 18, 4, 8]);
    expect(t.get('audio.sscp.conv_0_out')!.shape).toEqual([1, 8, 36, 64]);
  });

  it('refuses a clip too short for one frame', () => {
    expect(() => traceAudio(model, [new Float32Array(100)])).toThrow(/too short/);
  });
});

describe('traceAudioFiles (the CLI face)', () => {
  it('decodes WAVs, batches them and returns the five tensors', async () => {
    const { traceAudioFiles, encodeWav } = await import('../../../src/encoders/audio/index.js');
    const { writeSafetensors } = await import('../../../src/checkpoint/safetensors.js');
    const chirp = Float32Array.from(get(feats, 'chirp_1p0s.waveform').data);
    const two = Float32Array.from(get(feats, 'twotone_2p37s.waveform').data);
    const files = [
      { name: 'a.wav', bytes: encodeWav([chirp], 16000, 'float32') },
      { name: 'b.wav', bytes: encodeWav([two], 16000, 'float32') },
    ];
    const t = await traceAudioFiles(new NodeFolder(join(GOLDEN_DIR, 'encoder-tiny')), files);
    expect([...t.keys()]).toEqual(['audio.input_features', 'audio.last_hidden_state', 'audio.embed_soft', 'audio.input_features_mask', 'audio.mask']);
    expect(maxAbsDiff(t.get('audio.last_hidden_state')!.data, get(g, 'A.last_hidden_state').data)).toBeLessThan(ATOL_END_TO_END);
    const bytes = writeSafetensors([...t].map(([name, x]) => ({ name, ...x })));
    // The written file reads back with the project's own reader (F32 offsets stay aligned).
    const { SafetensorsFile } = await import('../../../src/checkpoint/safetensors.js');
    const { MemorySource } = await import('../../../src/io/byte_source.js');
    const st = await SafetensorsFile.open(new MemorySource(bytes, 'trace.safetensors'));
    expect(Array.from(await st.readF32('audio.last_hidden_state'))).toEqual(Array.from(t.get('audio.last_hidden_state')!.data));
    expect(st.info('audio.mask').shape).toEqual([2, 15]);
  });
});

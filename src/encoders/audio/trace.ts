/**
 * The audio face of `gemma3n trace`: runs the whole audio path on a batch of clips and returns the
 * named tensors the golden files hold (meanings as in test/golden/audio/README.md):
 *
 *   audio.input_features       F32  [B, T, 128]   log-mel, padded to the longest clip
 *   audio.input_features_mask  BOOL [B, T]        1 = valid frame (the extractor's convention)
 *   audio.last_hidden_state    F32  [B, T', D]    encoder output, zero at padded steps
 *   audio.mask                 BOOL [B, T']       1 = PADDED (the encoder's convention)
 *   audio.embed_soft           F32  [B, T', H]    embed_audio of last_hidden_state
 *
 * With `intermediates: true` it also returns every encoder intermediate as `audio.<name>`
 * (e.g. `audio.conformer.0.attention_out` [B, T_sub, D]), stacked over the batch.
 */
import type { DType } from '../../checkpoint/dtype.js';
import type { FileProvider } from '../../io/byte_source.js';
import type { Kernels } from '../../kernels/kernels.js';
import { TsKernels } from '../../kernels/ts_kernels.js';
import type { Tracer } from '../../model/trace.js';
import { decodeAudioFile } from './load.js';
import { AudioModel } from './model.js';

export interface TracedTensor {
  dtype: DType;
  shape: number[];
  data: Float32Array | Uint8Array;
}

export interface TraceOptions {
  /** Also record the per-module intermediates of the encoder. */
  intermediates?: boolean;
}

/** `waveforms`: 16 kHz mono clips (see `decodeAudioFile`). */
export function traceAudio(model: AudioModel, waveforms: readonly Float32Array[], opts: TraceOptions = {}): Map<string, TracedTensor> {
  const out = new Map<string, TracedTensor>();
  const f = model.extractFeatures(waveforms);
  out.set('audio.input_features', { dtype: 'F32', shape: [f.batch, f.frames, f.featureSize], data: f.features });
  const parts = new Map<string, { shape: number[]; items: Float32Array[] }>();
  // The encoder traces clip by clip, clip 0 first: each name arrives once per clip, in batch order.
  const hook: Tracer | undefined = opts.intermediates
    ? (name, data, shape) => {
        let p = parts.get(name);
        if (!p) parts.set(name, (p = { shape, items: [] }));
        p.items.push(Float32Array.from(data));
      }
    : undefined;
  const enc = model.encode(f, hook);
  for (const [name, p] of parts) {
    const per = p.items[0].length, data = new Float32Array(per * f.batch);
    p.items.forEach((it, b) => data.set(it, b * per));
    out.set(`audio.${name}`, { dtype: 'F32', shape: [f.batch, ...p.shape], data });
  }
  out.set('audio.last_hidden_state', { dtype: 'F32', shape: [enc.batch, enc.steps, enc.hiddenSize], data: enc.hidden });
  out.set('audio.embed_soft', { dtype: 'F32', shape: [enc.batch, enc.steps, model.config.textHiddenSize], data: model.embed(enc) });
  // One-byte BOOL tensors go last, so every F32 tensor of a file written in this order stays
  // 4-byte aligned (src/checkpoint/safetensors.ts refuses misaligned data offsets).
  out.set('audio.input_features_mask', { dtype: 'BOOL', shape: [f.batch, f.frames], data: f.mask });
  out.set('audio.mask', { dtype: 'BOOL', shape: [enc.batch, enc.steps], data: enc.paddedMask });
  return out;
}

/**
 * What `gemma3n trace --model DIR --audio a.wav [--audio b.wav ...]` writes: opens the model folder
 * (full gemma3n config.json, checkpoint with the audio weights), decodes each WAV to 16 kHz mono and
 * traces the batch. Pass the result's entries to `writeSafetensors` as `{name, ...tensor}`.
 */
export async function traceAudioFiles(
  folder: FileProvider,
  files: readonly { name: string; bytes: Uint8Array }[],
  kernels: Kernels = new TsKernels(),
  opts: TraceOptions = {},
): Promise<Map<string, TracedTensor>> {
  if (files.length === 0) throw new Error('trace: no --audio files given');
  const waves = files.map((f) => decodeAudioFile(f.bytes, f.name));
  const model = await AudioModel.open(folder, kernels);
  try {
    return traceAudio(model, waves, opts);
  } finally {
    model.release();
  }
}

/**
 * Audio encoding speed as a real-time factor (processing time / audio duration; < 1 is faster than
 * real time) for a 30 s clip through the whole audio path — log-mel, the E2B `audio_tower`, and
 * `embed_audio` — with synthetic seeded weights in the shapes of google/gemma-3n-E2B:
 * audio_config hidden 1536, 12 conformer layers, 8 heads, chunk 12, left context 13, conv kernel 5,
 * sub-sampling channels [128, 32]; text hidden 2048 (≈ 0.68 B audio parameters, 2.7 GB as float32).
 *
 *   node dist/bench/audio.bench.js [--seconds 30] [--layers 12]
 *
 * Exported as `runAudioBench` for the bench runner.
 */
import Benchmark from 'benchmark';
import type { Kernels } from '../src/kernels/kernels.js';
import { TsKernels } from '../src/kernels/ts_kernels.js';
import type { Checkpoint } from '../src/checkpoint/checkpoint.js';
import { AudioModel } from '../src/encoders/audio/model.js';

/** The E2B config.json fields the audio path reads (values of google/gemma-3n-E2B). */
export const E2B_CONFIG = {
  model_type: 'gemma3n',
  audio_soft_tokens_per_image: 188,
  audio_config: {
    model_type: 'gemma3n_audio',
    input_feat_size: 128,
    hidden_size: 1536,
    rms_norm_eps: 1e-6,
    gradient_clipping: 1e10,
    conf_attention_chunk_size: 12,
    conf_attention_context_left: 13,
    conf_attention_context_right: 0,
    conf_attention_logit_cap: 50.0,
    conf_num_attention_heads: 8,
    conf_num_hidden_layers: 12,
    conf_conv_kernel_size: 5,
    conf_reduction_factor: 4,
    conf_residual_weight: 0.5,
    sscp_conv_channel_size: [128, 32],
    sscp_conv_group_norm_eps: 1e-3,
    sscp_conv_kernel_size: [
      [3, 3],
      [3, 3],
    ],
    sscp_conv_stride_size: [
      [2, 2],
      [2, 2],
    ],
    vocab_size: 128,
    vocab_offset: 262272,
  },
  text_config: { model_type: 'gemma3n_text', hidden_size: 2048, vocab_size: 262400 },
};

/** Seeded uniform values in [-a, a), a = 1/√fan_in for matrices (so activations stay O(1)), 1 ± 0.1 for norms. */
function syntheticTensor(name: string, shape: readonly number[]): Float32Array {
  let seed = 0x9e3779b9;
  for (let i = 0; i < name.length; i++) seed = Math.imul(seed ^ name.charCodeAt(i), 0x01000193);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const isNorm = shape.length === 1;
  const fanIn = isNorm ? 1 : n / shape[0];
  const a = isNorm ? 0.1 : 1 / Math.sqrt(fanIn);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // LCG: fast, good enough for weights
    const u = (s / 4294967296) * 2 - 1;
    out[i] = isNorm ? 1 + a * u : a * u;
  }
  return out;
}

/** A stand-in checkpoint that invents each tensor from its name, in the shape the loader asks for. */
function syntheticCheckpoint(): Checkpoint {
  const fake = {
    location: '<synthetic E2B audio>',
    readF32: async (name: string, shape?: readonly number[]) => {
      if (!shape) throw new Error(`synthetic checkpoint: '${name}' read without a shape`);
      return syntheticTensor(name, shape);
    },
  };
  return fake as unknown as Checkpoint;
}

/** A seeded speech-like test signal: a few drifting harmonics plus noise, amplitude ~0.3. */
function syntheticClip(seconds: number): Float32Array {
  const n = Math.round(seconds * 16000),
    x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const f0 = 120 + 40 * Math.sin((2 * Math.PI * i) / 16000 / 3);
    const ph = (2 * Math.PI * f0 * i) / 16000;
    x[i] = 0.2 * Math.sin(ph) + 0.08 * Math.sin(2 * ph) + 0.04 * Math.sin(3 * ph) + 0.01 * (s / 4294967296 - 0.5);
  }
  return x;
}

export interface AudioBenchResult {
  seconds: number;
  layers: number;
  kernels: string;
  /** Mean wall time of one full pass (features + encoder + embedder), seconds. */
  passSeconds: number;
  featureSeconds: number;
  encoderSeconds: number;
  /** CPU time of the encoder+embedder in the last pass (Node only; a fairer number on a shared machine). */
  encoderCpuSeconds: number;
  realTimeFactor: number;
  softTokens: number;
}

/**
 * `linearFormat: 'q4'` loads the tower as a packed folder runs it (per-family int8/int4,
 * src/encoders/tower_weights.ts); 'f32' (default) as a bf16/f32 checkpoint without --q4.
 */
export async function runAudioBench(
  opts: { seconds?: number; layers?: number; kernels?: Kernels; log?: (s: string) => void; linearFormat?: 'f32' | 'q4' } = {},
): Promise<AudioBenchResult> {
  const seconds = opts.seconds ?? 30,
    layers = opts.layers ?? 12,
    kernels = opts.kernels ?? new TsKernels();
  const log = opts.log ?? (() => {});
  const cfg = structuredClone(E2B_CONFIG);
  cfg.audio_config.conf_num_hidden_layers = layers;
  const t = performance.now();
  const model = await AudioModel.load(syntheticCheckpoint(), cfg, kernels, { linearFormat: opts.linearFormat });
  log(`loaded synthetic E2B audio weights (${layers} layers) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const clip = syntheticClip(seconds);

  // benchmark.js times full passes; each pass also records its own breakdown. A pass takes
  // minutes in plain TS, so one sample is asked for.
  let featureSeconds = 0,
    encoderSeconds = 0,
    encoderCpuSeconds = 0,
    softTokens = 0;
  const pass = () => {
    let t0 = performance.now();
    const f = model.extractFeatures([clip]);
    featureSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const c0 = cpuSeconds();
    // Stage times through the encoder's trace hook (it passes arrays by reference: no copies).
    let last = t0,
      sscp = 0;
    const blocks: number[] = [];
    const enc = model.encode(f, (name) => {
      if (name === 'sscp.out' || /^conformer\.\d+\.out$/.test(name)) {
        const now = performance.now();
        if (name === 'sscp.out') sscp = (now - last) / 1000;
        else blocks.push((now - last) / 1000);
        last = now;
      }
    });
    model.embed(enc);
    encoderSeconds = (performance.now() - t0) / 1000;
    encoderCpuSeconds = cpuSeconds() - c0;
    softTokens = enc.steps;
    const meanBlock = blocks.reduce((a, b) => a + b, 0) / Math.max(1, blocks.length);
    log(
      `pass: features ${featureSeconds.toFixed(2)} s, sub-sample convs ${sscp.toFixed(2)} s, conformer block mean ${meanBlock.toFixed(2)} s, ` +
        `encoder+embedder ${encoderSeconds.toFixed(2)} s wall / ${encoderCpuSeconds.toFixed(2)} s CPU, ${softTokens} soft tokens`,
    );
  };
  const passSeconds = await new Promise<number>((resolve, reject) => {
    const bench = new Benchmark(`audio ${seconds}s`, pass, {
      minSamples: 1,
      maxTime: 0,
      initCount: 1,
      async: false,
      onComplete: function (this: Benchmark) {
        resolve(this.stats.mean);
      },
      onError: function (this: Benchmark) {
        reject((this as unknown as { error: Error }).error);
      },
    });
    bench.run();
  });
  model.release();
  const result = {
    seconds,
    layers,
    kernels: kernels.name,
    passSeconds,
    featureSeconds,
    encoderSeconds,
    encoderCpuSeconds,
    realTimeFactor: passSeconds / seconds,
    softTokens,
  };
  log(
    `audio ${seconds} s on E2B shapes (${layers} layers, ${kernels.name} kernels): ${passSeconds.toFixed(2)} s per pass, real-time factor ${result.realTimeFactor.toFixed(3)}`,
  );
  return result;
}

/** Process CPU seconds where the runtime exposes them (Node), else NaN. */
function cpuSeconds(): number {
  const p = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process;
  if (!p?.cpuUsage) return NaN;
  const u = p.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function arg(name: string): number | undefined {
  const args = typeof process !== 'undefined' ? process.argv : [];
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : undefined;
}

// Run directly: node dist/bench/audio.bench.js
if (typeof process !== 'undefined' && process.argv[1] && /audio\.bench\.[jt]s$/.test(process.argv[1])) {
  const r = await runAudioBench({ seconds: arg('seconds'), layers: arg('layers'), log: console.log });
  console.log(JSON.stringify(r));
}

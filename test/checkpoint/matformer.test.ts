/**
 * MatFormer slicing on a tiny nested model: the model sliced on the fly equals a model built
 * directly from the sliced weights (cut here by independent plain loops), and `gemma3n slice`
 * writes a standalone folder that loads to the same logits.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { MATFORMER_PRESETS, slicedConfig } from '../../src/checkpoint/matformer.js';
import { writeSafetensors, type TensorToWrite } from '../../src/checkpoint/safetensors.js';
import { syntheticTextTensors } from '../../src/checkpoint/synthetic.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { GOLDEN } from '../helpers.js';

const L = 6,
  H = 32,
  P = 4,
  I = 64,
  V = 300;
const config = {
  model_type: 'gemma3n_text',
  vocab_size: V,
  vocab_size_per_layer_input: V,
  hidden_size: H,
  hidden_size_per_layer_input: P,
  intermediate_size: Array(L).fill(I),
  num_hidden_layers: L,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 16,
  layer_types: ['sliding_attention', 'sliding_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'],
  num_kv_shared_layers: 2,
  sliding_window: 4,
  laurel_rank: 4,
  altup_num_inputs: 4,
  activation_sparsity_pattern: [0.95, 0.95, 0, 0, 0, 0],
  final_logit_softcapping: 30,
  rope_theta: 1e6,
  rope_local_base_freq: 1e4,
  max_position_embeddings: 128,
};
const spec = { layersToSkip: [1], ffnHiddenDims: [32, 48, 16, 64, 32] };
const tensors = syntheticTextTensors(config, 5, 'F32');
const ids = [5, 17, 250, 3, 99, 42, 7, 1, 260, 11];

/** The sliced checkpoint written out by hand: rename layers, cut rows/columns with plain loops. */
function handSliced(): TensorToWrite[] {
  const kept = [0, 2, 3, 4, 5];
  const out: TensorToWrite[] = [];
  const cut = (src: Float32Array, cols: number, keepRow: (r: number) => boolean, keepCol: (c: number) => boolean) => {
    const vals: number[] = [];
    for (let r = 0; r < src.length / cols; r++) if (keepRow(r)) for (let c = 0; c < cols; c++) if (keepCol(c)) vals.push(src[r * cols + c]);
    return new Float32Array(vals);
  };
  for (const t of tensors) {
    const data = t.data as Float32Array;
    const m = /layers\.(\d+)\.(.*)$/.exec(t.name);
    if (m) {
      const newIdx = kept.indexOf(Number(m[1]));
      if (newIdx < 0) continue;
      const w = spec.ffnHiddenDims[newIdx];
      const name = t.name.replace(`layers.${m[1]}.`, `layers.${newIdx}.`);
      if (m[2] === 'mlp.gate_proj.weight' || m[2] === 'mlp.up_proj.weight')
        out.push({
          name,
          dtype: 'F32',
          shape: [w, H],
          data: cut(
            data,
            H,
            (r) => r < w,
            () => true,
          ),
        });
      else if (m[2] === 'mlp.down_proj.weight')
        out.push({
          name,
          dtype: 'F32',
          shape: [H, w],
          data: cut(
            data,
            I,
            () => true,
            (c) => c < w,
          ),
        });
      else out.push({ ...t, name });
    } else if (t.name.endsWith('embed_tokens_per_layer.weight')) {
      out.push({
        ...t,
        shape: [V, kept.length * P],
        data: cut(
          data,
          L * P,
          () => true,
          (c) => kept.includes(Math.floor(c / P)),
        ),
      });
    } else if (t.name.endsWith('per_layer_model_projection.weight')) {
      out.push({
        ...t,
        shape: [kept.length * P, H],
        data: cut(
          data,
          H,
          (r) => kept.includes(Math.floor(r / P)),
          () => true,
        ),
      });
    } else out.push(t);
  }
  return out;
}

const folderOf = (cfg: object, ts: TensorToWrite[]) =>
  new MemoryFolder(
    new Map([
      ['config.json', new TextEncoder().encode(JSON.stringify(cfg))],
      ['model.safetensors', writeSafetensors(ts)],
    ]),
  );

describe('MatFormer slicing', () => {
  it('slicing on the fly equals a model built from hand-sliced weights, bit for bit', async () => {
    const k = new TsKernels();
    const { model: onTheFly } = await Gemma3nTextModel.load(folderOf(config, tensors), k, { slice: spec });
    const handConfig = {
      ...config,
      num_hidden_layers: 5,
      intermediate_size: spec.ffnHiddenDims,
      num_kv_shared_layers: 2,
      layer_types: ['sliding_attention', 'full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'],
      activation_sparsity_pattern: [0.95, 0, 0, 0, 0],
    };
    const { model: direct } = await Gemma3nTextModel.load(folderOf(handConfig, handSliced()), k);
    expect(onTheFly.config.numHiddenLayers).toBe(5);
    expect(onTheFly.config.intermediateSize).toEqual(spec.ffnHiddenDims);
    const a = await onTheFly.forward(ids, onTheFly.newCache(), { logits: 'all' });
    const b = await direct.forward(ids, direct.newCache(), { logits: 'all' });
    expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
    // And the slice is a different model from the full one.
    const { model: fullModel } = await Gemma3nTextModel.load(folderOf(config, tensors), k);
    const f = await fullModel.forward(ids, fullModel.newCache(), { logits: 'all' });
    expect(Array.from(f.logits)).not.toEqual(Array.from(a.logits));
  });

  it('rejects slices that widen an FFN, skip out of range, or leave a shared layer without a producer', () => {
    expect(() => slicedConfig(config, { layersToSkip: [], ffnHiddenDims: [128, 64, 64, 64, 64, 64] })).toThrow(/FFN width 128 for layer 0 .* can only narrow/);
    expect(() => slicedConfig(config, { layersToSkip: [9], ffnHiddenDims: Array(6).fill(64) })).toThrow(/layer to skip 9/);
    expect(() => slicedConfig(config, { layersToSkip: [2], ffnHiddenDims: Array(5).fill(64) })).toThrow(/no earlier full_attention layer/);
    expect(() => slicedConfig(config, { layersToSkip: [0], ffnHiddenDims: [64] })).toThrow(/1 FFN widths given for 5 kept layers/);
  });

  it('the published E2B preset is E4B with FFN 8192 and layers 20-24 skipped', () => {
    const e2b = MATFORMER_PRESETS.E2B.spec;
    expect(e2b.layersToSkip).toEqual([20, 21, 22, 23, 24]);
    expect(e2b.ffnHiddenDims).toEqual(Array(30).fill(8192));
    // On an E4B-shaped config (35 layers, FFN 16384, 15 KV-shared) it gives E2B's structure.
    const e4b = { model_type: 'gemma3n_text', num_hidden_layers: 35, intermediate_size: 16384, num_kv_shared_layers: 15 };
    const sliced = slicedConfig(e4b, e2b);
    expect(sliced.num_hidden_layers).toBe(30);
    expect(sliced.num_kv_shared_layers).toBe(10);
    expect((sliced.activation_sparsity_pattern as number[]).filter((x) => x > 0).length).toBe(10);
  });

  it('gemma3n slice writes a standalone sharded checkpoint that loads to the same logits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'g3n-slice-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
    const out = join(dir, 'sliced');
    await promisify(execFile)(process.execPath, [
      join(GOLDEN, '..', '..', 'bin', 'gemma3n.js'),
      'slice',
      '--model',
      dir,
      '--layers-to-skip',
      '1',
      '--ffn',
      '32,48,16,64,32',
      '--out',
      out,
    ]);
    const k = new TsKernels();
    const { model: written } = await Gemma3nTextModel.load(new NodeFolder(out), k);
    const { model: onTheFly } = await Gemma3nTextModel.load(folderOf(config, tensors), k, { slice: spec });
    const a = await written.forward(ids, written.newCache(), { logits: 'all' });
    const b = await onTheFly.forward(ids, onTheFly.newCache(), { logits: 'all' });
    expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
  });
});

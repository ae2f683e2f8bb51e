/**
 * Loads the Gemma 4 (E2B/E4B) text decoder's weights, checking every shape against the config.
 * Names as published: `model.language_model.*` (Gemma4ForConditionalGeneration) or `model.*`
 * (Gemma4ForCausalLM). The KV-shared layers' k_proj / v_proj / k_norm are in the released files
 * but unused (random in the goldens): they are never read.
 *
 * A packed v2 folder (`gemma3n quantize`, docs/packed-format.md) loads as Gemma 3n's does: the
 * `.q4` linears upload as they are, the tied embedding is stored once as the LM head's int4
 * matrix (`embed_tokens.weight.q4`, rows dequantized per token) and the per-layer table as int4
 * rows (`.q4r`); both tables are read from the file by default.
 */
import type { Kernels, LinearWeight, WeightFormat } from '../kernels/kernels.js';
import { checkShape, textPrefix, type TensorStore } from './checkpoint.js';
import { InMemoryTable, type EmbeddingTable } from './embedding_table.js';
import type { Gemma4TextConfig } from './gemma4_config.js';
import { decodeQ4, Q4_SUFFIX, Q4R_SUFFIX } from './packed_format.js';
import { inMemoryLocation, q4BlockTable, q4RowTable, type PackedLocation } from './q4_tables.js';
import { CheckpointError } from './safetensors.js';
import { StreamedTable } from './streamed_table.js';
import type { LoadOptions } from './weights.js';
import type { Q4Matrix } from '../kernels/q4.js';

export interface Gemma4LayerWeights {
  input_layernorm: Float32Array;
  post_attention_layernorm: Float32Array;
  pre_feedforward_layernorm: Float32Array;
  post_feedforward_layernorm: Float32Array;
  self_attn: {
    q_proj: LinearWeight;
    k_proj: LinearWeight | null;
    v_proj: LinearWeight | null;
    o_proj: LinearWeight;
    q_norm: Float32Array;
    k_norm: Float32Array | null;
  };
  mlp: { gate_proj: LinearWeight; up_proj: LinearWeight; down_proj: LinearWeight };
  per_layer_input_gate: LinearWeight;
  per_layer_projection: LinearWeight;
  post_per_layer_input_norm: Float32Array;
  /** Multiplies the whole hidden state at the end of the layer (a buffer in the checkpoint). */
  layer_scalar: number;
}

export interface Gemma4TextWeights {
  embed_tokens: EmbeddingTable;
  embed_tokens_per_layer: EmbeddingTable;
  per_layer_model_projection: LinearWeight;
  per_layer_projection_norm: Float32Array;
  norm: Float32Array;
  lm_head: LinearWeight;
  layers: Gemma4LayerWeights[];
  /** True when a table reads rows from the checkpoint file: keep it open while the model lives. */
  readsCheckpoint: boolean;
}

export async function loadGemma4TextWeights(ckpt: TensorStore, c: Gemma4TextConfig, kernels: Kernels, opts: LoadOptions = {}): Promise<Gemma4TextWeights> {
  const prefix = textPrefix(ckpt);
  const H = c.hiddenSize,
    P = c.hiddenSizePerLayerInput,
    L = c.numHiddenLayers;
  const total = 6 + L * 17;
  let done = 0;
  const tick = () => opts.onProgress?.(++done, total);
  const readWeight = async (name: string, shape: number[]) => {
    const info = await ckpt.info(prefix + name);
    checkShape(info.file, info, shape);
    if (!['F32', 'BF16', 'F16', 'F64'].includes(info.dtype))
      throw new CheckpointError(`${info.file}: tensor '${info.name}' has dtype ${info.dtype}; a weight must be F32, BF16, F16 or F64`);
    return ckpt.readF32(prefix + name);
  };
  const vec = async (name: string, shape: number[]) => {
    const v = await readWeight(name, shape);
    tick();
    return v;
  };
  const formatOf = (name: string): WeightFormat => (opts.format === 'q4' && !(opts.keepF32?.(name) ?? false) ? 'q4' : 'f32');
  /** A linear saved already packed (`NAME.q4`) uploads as is, without re-quantizing. */
  const packed = async (name: string, out: number, inp: number): Promise<Q4Matrix | null> => {
    const full = prefix + name + Q4_SUFFIX;
    if (!ckpt.has(full)) return null;
    const info = await ckpt.info(full);
    const q = decodeQ4(await ckpt.readBytes(full), `${info.file}: tensor '${full}'`);
    if (q.outDim !== out || q.inDim !== inp)
      throw new CheckpointError(`${info.file}: packed tensor '${full}' is [${q.outDim}, ${q.inDim}] but the config implies [${out}, ${inp}]`);
    return q;
  };
  const linear = async (name: string, out: number, inp: number) => {
    const q = await packed(name, out, inp);
    const w = q ? kernels.createLinear(q, out, inp, 'q4') : kernels.createLinear(await readWeight(name, [out, inp]), out, inp, formatOf(name));
    tick();
    return w;
  };
  const table = async (name: string, rows: number, cols: number): Promise<EmbeddingTable> => {
    const info = await ckpt.info(prefix + name);
    checkShape(info.file, info, [rows, cols]);
    if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16')
      throw new CheckpointError(`${info.file}: tensor '${info.name}' has dtype ${info.dtype}; an embedding table must be F32, BF16 or F16`);
    tick();
    if (!resident && name === 'embed_tokens_per_layer.weight') {
      const { source } = await ckpt.sourceOf(prefix + name);
      return new StreamedTable(source, info.offset, rows, cols, info.dtype, opts.pleCacheRows);
    }
    return new InMemoryTable(rows, cols, info.dtype, await ckpt.readBytes(prefix + name));
  };

  // Packed v2: the tied embedding once, as the LM head's int4 matrix; the per-layer table as int4 rows.
  const packedEmbed = ckpt.has(prefix + 'embed_tokens.weight' + Q4_SUFFIX);
  const packedPle = ckpt.has(prefix + 'embed_tokens_per_layer.weight' + Q4R_SUFFIX);
  const resident = opts.ple === 'memory' || (opts.ple === undefined && !packedPle);
  const location = async (name: string): Promise<PackedLocation> => {
    const { info, source } = await ckpt.sourceOf(name);
    const loc = { source, offset: info.offset, byteLength: info.byteLength, where: `${source.name}: tensor '${name}'` };
    return resident ? inMemoryLocation(loc) : loc;
  };
  let embed_tokens: EmbeddingTable;
  if (packedEmbed) {
    embed_tokens = await q4BlockTable(await location(prefix + 'embed_tokens.weight' + Q4_SUFFIX), c.vocabSize, H);
    tick();
  } else embed_tokens = await table('embed_tokens.weight', c.vocabSize, H);
  let embed_tokens_per_layer: EmbeddingTable;
  if (packedPle) {
    embed_tokens_per_layer = await q4RowTable(
      await location(prefix + 'embed_tokens_per_layer.weight' + Q4R_SUFFIX),
      c.vocabSizePerLayerInput,
      L * P,
      opts.pleCacheRows,
    );
    tick();
  } else embed_tokens_per_layer = await table('embed_tokens_per_layer.weight', c.vocabSizePerLayerInput, L * P);
  // Tied LM head: the unscaled embed_tokens as a [V, H] linear (no lm_head.weight in the files).
  const head = await packed(packedEmbed ? 'embed_tokens.weight' : 'lm_head.weight', c.vocabSize, H); // lm_head.weight.q4: a Q4_0 GGUF's token table
  const lm_head = head
    ? kernels.createLinear(head, c.vocabSize, H, 'q4')
    : kernels.createLinear(
        embed_tokens instanceof InMemoryTable ? embed_tokens.toFloat32() : await ckpt.readF32(prefix + 'embed_tokens.weight'),
        c.vocabSize,
        H,
        formatOf('lm_head.weight'),
      );
  tick();
  const per_layer_model_projection = await linear('per_layer_model_projection.weight', L * P, H);
  const per_layer_projection_norm = await vec('per_layer_projection_norm.weight', [P]);
  const norm = await vec('norm.weight', [H]);
  const layers: Gemma4LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `layers.${l}.`;
    const hd = c.layerHeadDims[l],
      I = c.layerIntermediateSizes[l];
    const nQ = c.numAttentionHeads * hd,
      nKV = c.numKeyValueHeads * hd;
    const own = c.kvSources[l] === l;
    const scalar = await vec(p + 'layer_scalar', [1]);
    layers.push({
      input_layernorm: await vec(p + 'input_layernorm.weight', [H]),
      post_attention_layernorm: await vec(p + 'post_attention_layernorm.weight', [H]),
      pre_feedforward_layernorm: await vec(p + 'pre_feedforward_layernorm.weight', [H]),
      post_feedforward_layernorm: await vec(p + 'post_feedforward_layernorm.weight', [H]),
      self_attn: {
        q_proj: await linear(p + 'self_attn.q_proj.weight', nQ, H),
        k_proj: own ? await linear(p + 'self_attn.k_proj.weight', nKV, H) : null,
        v_proj: own ? await linear(p + 'self_attn.v_proj.weight', nKV, H) : null,
        o_proj: await linear(p + 'self_attn.o_proj.weight', H, nQ),
        q_norm: await vec(p + 'self_attn.q_norm.weight', [hd]),
        k_norm: own ? await vec(p + 'self_attn.k_norm.weight', [hd]) : null,
      },
      mlp: {
        gate_proj: await linear(p + 'mlp.gate_proj.weight', I, H),
        up_proj: await linear(p + 'mlp.up_proj.weight', I, H),
        down_proj: await linear(p + 'mlp.down_proj.weight', H, I),
      },
      per_layer_input_gate: await linear(p + 'per_layer_input_gate.weight', P, H),
      per_layer_projection: await linear(p + 'per_layer_projection.weight', H, P),
      post_per_layer_input_norm: await vec(p + 'post_per_layer_input_norm.weight', [H]),
      layer_scalar: scalar[0],
    });
    if (!own) done += 3;
  }
  return {
    embed_tokens,
    embed_tokens_per_layer,
    per_layer_model_projection,
    per_layer_projection_norm,
    norm,
    lm_head,
    layers,
    readsCheckpoint: packedEmbed || !resident,
  };
}

/**
 * Loads the Gemma 3n text decoder's weights from a checkpoint, checking every shape against
 * the config. Names are those of the published checkpoints: `model.language_model.*` in a
 * Gemma3nForConditionalGeneration checkpoint, `model.*` in a Gemma3nForCausalLM one.
 */
import type { Kernels, LinearWeight, WeightFormat } from '../kernels/kernels.js';
import { checkShape, textPrefix, type TensorStore } from './checkpoint.js';

export { textPrefix };
import { firstKvSharedLayer, type TextConfig } from './config.js';
import { InMemoryTable, type EmbeddingTable } from './embedding_table.js';
import { CheckpointError } from './safetensors.js';
import { StreamedTable } from './streamed_table.js';
import { Q4_SUFFIX, Q4R_SUFFIX } from './packed_format.js';
import { inMemoryLocation, q4BlockTable, q4RowTable, type PackedLocation } from './q4_tables.js';
import { ReadSlots, startPackedQ4 } from './q4_load.js';
import { mark } from '../util/marks.js';

export interface AttentionWeights {
  q_proj: LinearWeight; // [heads*head_dim, H]
  /** K/V projections are absent on KV-shared layers: they reuse an earlier layer's cache. */
  k_proj: LinearWeight | null; // [kv_heads*head_dim, H]
  v_proj: LinearWeight | null; // [kv_heads*head_dim, H]
  o_proj: LinearWeight; // [H, heads*head_dim]
  q_norm: Float32Array; // [head_dim]
  k_norm: Float32Array | null; // [head_dim]
}

export interface LayerWeights {
  input_layernorm: Float32Array; // [H]
  post_attention_layernorm: Float32Array; // [H]
  pre_feedforward_layernorm: Float32Array; // [H]
  post_feedforward_layernorm: Float32Array; // [H]
  self_attn: AttentionWeights;
  mlp: { gate_proj: LinearWeight; up_proj: LinearWeight; down_proj: LinearWeight }; // [I,H] [I,H] [H,I]
  altup: {
    correct_output_scale: Float32Array; // [H]
    correction_coefs: Float32Array; // [A, A]  (clipped to ±altup_coef_clip)
    prediction_coefs: Float32Array; // [A*A, A]
    modality_router: Float32Array; // [A, H]
    router_norm: Float32Array; // [H]
  };
  laurel: { linear_left: LinearWeight; linear_right: LinearWeight; post_laurel_norm: Float32Array }; // [r,H] [H,r] [H]
  per_layer_input_gate: LinearWeight; // [P, H]
  per_layer_projection: LinearWeight; // [H, P]
  post_per_layer_input_norm: Float32Array; // [H]
}

export interface TextWeights {
  embed_tokens: EmbeddingTable; // [V, H] (unscaled)
  embed_tokens_per_layer: EmbeddingTable; // [V_ple, L*P]
  per_layer_model_projection: LinearWeight; // [L*P, H]
  per_layer_projection_norm: Float32Array; // [P]
  altup_projections: LinearWeight[]; // A-1 × [H, H]
  altup_unembed_projections: LinearWeight[]; // A-1 × [H, H]
  norm: Float32Array; // [H]
  /** Tied LM head: embed_tokens.weight as a [V, H] linear. */
  lm_head: LinearWeight;
  layers: LayerWeights[];
  /** True when a table reads rows from the checkpoint file: keep it open while the model lives. */
  readsCheckpoint: boolean;
  /** Non-null while parts are still loading (LoadOptions.background): await a part before using it. */
  loading: WeightsLoading | null;
}

export interface LoadOptions {
  /** Storage of the big linear weights inside the kernel backend (default f32). */
  format?: WeightFormat;
  /** With format 'q4': linears (by name, without prefix) to keep in f32 anyway. */
  keepF32?: (name: string) => boolean;
  /**
   * Where the per-layer embedding table lives: 'memory' or 'stream' (rows read from the
   * checkpoint file on demand, with an LRU cache of `pleCacheRows` rows). Streaming keeps the
   * checkpoint open: close it when the model is released. Default: 'stream' for a packed v2
   * folder (its int4 tables, and the tied embedding's rows, stay on disk), else 'memory'.
   */
  ple?: 'memory' | 'stream';
  pleCacheRows?: number;
  /** Called after each tensor is loaded: (done, total). */
  onProgress?: (done: number, total: number) => void;
  /**
   * For a packed v2 folder: return as soon as every part's reads are under way, with
   * `TextWeights.loading` set; the forward pass awaits each part (the input projections, layer l,
   * the output side) just before it uses it, so the first prompt runs while the later layers are
   * still arriving. A read that fails rejects its part (and every part not yet started), so the
   * error surfaces from the forward pass that needed it. Default false (everything in place on
   * return). Other folders ignore it.
   */
  background?: boolean;
}

/** Weights still arriving (LoadOptions.background); each promise resolves once its part is in place. */
export interface WeightsLoading {
  /** per_layer_model_projection, per_layer_projection_norm, altup_projections: a step's input side. */
  readonly input: Promise<void>;
  /** layers[l]: set and its tensors read. */
  readonly layers: readonly Promise<void>[];
  /** norm, altup_unembed_projections, lm_head: a step's output side. */
  readonly output: Promise<void>;
  /** Every part (then `loading` is null). */
  readonly all: Promise<void>;
}

/** A table left in the checkpoint file, read row by row. */
async function streamedTable(ckpt: TensorStore, name: string, rows: number, cols: number, cacheRows?: number): Promise<StreamedTable> {
  const { info, source } = await ckpt.sourceOf(name);
  checkShape(source.name, info, [rows, cols]);
  if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16')
    throw new CheckpointError(`${source.name}: tensor '${name}' has dtype ${info.dtype}; an embedding table must be F32, BF16 or F16`);
  return new StreamedTable(source, info.offset, rows, cols, info.dtype, cacheRows);
}

export async function loadTextWeights(ckpt: TensorStore, c: TextConfig, kernels: Kernels, opts: LoadOptions = {}): Promise<TextWeights> {
  const prefix = textPrefix(ckpt);
  const H = c.hiddenSize,
    P = c.hiddenSizePerLayerInput,
    L = c.numHiddenLayers,
    A = c.altupNumInputs;
  const nQ = c.numAttentionHeads * c.headDim,
    nKV = c.numKeyValueHeads * c.headDim;
  const firstShared = firstKvSharedLayer(c);
  const total = 8 + 2 * (A - 1) + L * 24;
  let done = 0,
    reporting = true;
  const tick = () => {
    done++;
    if (reporting) opts.onProgress?.(done, total);
  };

  /** A float tensor of the expected shape; integer dtypes are refused, not reinterpreted. */
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
  /** Reads of packed weights still in flight (q4_load.ts startPackedQ4), awaited before returning. */
  const pending: Promise<void>[] = [];
  /** Two weight bodies read at a time, in the order a forward pass needs them (ReadSlots). */
  const slots = new ReadSlots(2);
  /** A `NAME.q4` straight into the kernels (q4_load.ts: version 3 blobs without a JS-side copy). */
  const packedLinear = async (name: string, out: number, inp: number): Promise<LinearWeight | null> => {
    const full = prefix + name + Q4_SUFFIX;
    if (!ckpt.has(full)) return null;
    const info = await ckpt.info(full);
    const { weight, ready } = await startPackedQ4(ckpt, full, kernels, out, inp, `${info.file}: tensor '${full}'`, slots);
    pending.push(ready);
    return weight;
  };
  const linear = async (name: string, out: number, inp: number) => {
    const w = (await packedLinear(name, out, inp)) ?? kernels.createLinear(await readWeight(name, [out, inp]), out, inp, formatOf(name));
    tick();
    return w;
  };
  const table = async (name: string, rows: number, cols: number) => {
    const info = await ckpt.info(prefix + name);
    checkShape(info.file, info, [rows, cols]);
    if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16')
      throw new CheckpointError(`${info.file}: tensor '${info.name}' has dtype ${info.dtype}; an embedding table must be F32, BF16 or F16`);
    const t = new InMemoryTable(rows, cols, info.dtype, await ckpt.readBytes(prefix + name));
    tick();
    return t;
  };

  // Packed v2 (docs/packed-format.md): the tied embedding is stored once, as the LM head's int4
  // matrix, and the per-layer table as int4 rows; both are read row by row.
  const packedEmbed = ckpt.has(prefix + 'embed_tokens.weight' + Q4_SUFFIX);
  const packedPle = ckpt.has(prefix + 'embed_tokens_per_layer.weight' + Q4R_SUFFIX);
  const resident = opts.ple === 'memory' || (opts.ple === undefined && !packedPle);
  const location = async (name: string): Promise<PackedLocation> => {
    const { info, source } = await ckpt.sourceOf(name);
    const loc = { source, offset: info.offset, byteLength: info.byteLength, where: `${source.name}: tensor '${name}'` };
    return resident ? inMemoryLocation(loc) : loc;
  };
  const embed_tokens: EmbeddingTable = packedEmbed
    ? await q4BlockTable(await location(prefix + 'embed_tokens.weight' + Q4_SUFFIX), c.vocabSize, H)
    : await table('embed_tokens.weight', c.vocabSize, H);
  if (packedEmbed) tick();
  const embed_tokens_per_layer = packedPle
    ? await q4RowTable(await location(prefix + 'embed_tokens_per_layer.weight' + Q4R_SUFFIX), c.vocabSizePerLayerInput, L * P, opts.pleCacheRows)
    : !resident
      ? await streamedTable(ckpt, prefix + 'embed_tokens_per_layer.weight', c.vocabSizePerLayerInput, L * P, opts.pleCacheRows)
      : await table('embed_tokens_per_layer.weight', c.vocabSizePerLayerInput, L * P);
  if (packedPle || !resident) tick();
  const readsCheckpoint = packedEmbed || !resident;
  // The rest, in the order a forward pass uses it: the step's input projections, the layers,
  // then the output side (the LM head last: at 287 MB for E2B the largest read, needed last).
  // `background` (a packed folder only: its reads go straight into kernel memory) returns once
  // everything is started and lets each part resolve as its bytes arrive.
  const background = opts.background === true && packedEmbed;
  const w = {
    embed_tokens,
    embed_tokens_per_layer,
    readsCheckpoint,
    layers: [],
    altup_projections: [],
    altup_unembed_projections: [],
    loading: null,
  } as unknown as TextWeights;
  const input = deferred(),
    output = deferred(),
    layerParts = Array.from({ length: L }, () => deferred());
  /** Resolves `part` once the reads started since `from` have landed (or rejects with their error). */
  const settle = (part: Deferred, from: number, name?: string) => {
    const p = Promise.all(pending.slice(from));
    part.resolve(p.then(() => (name === undefined ? undefined : mark(name))));
  };
  const fill = async () => {
    let from = pending.length;
    w.per_layer_model_projection = await linear('per_layer_model_projection.weight', L * P, H);
    w.per_layer_projection_norm = await vec('per_layer_projection_norm.weight', [P]);
    for (let i = 0; i < A - 1; i++) w.altup_projections.push(await linear(`altup_projections.${i}.weight`, H, H));
    settle(input, from, 'weights: input ready');
    for (let l = 0; l < L; l++) {
      from = pending.length;
      w.layers.push(await loadLayer(l));
      settle(layerParts[l], from, `weights: layer ${l} ready`);
    }
    from = pending.length;
    w.norm = await vec('norm.weight', [H]);
    for (let i = 0; i < A - 1; i++) w.altup_unembed_projections.push(await linear(`altup_unembed_projections.${i}.weight`, H, H));
    const packedHead = packedEmbed ? await packedLinear('embed_tokens.weight', c.vocabSize, H) : await packedLinear('lm_head.weight', c.vocabSize, H);
    w.lm_head = packedHead ?? kernels.createLinear((embed_tokens as InMemoryTable).toFloat32(), c.vocabSize, H, formatOf('lm_head.weight'));
    tick();
    settle(output, from, 'weights: output ready');
    mark('weights: all issued');
  };
  /**
   * One layer's tensors, all started at once (their small reads — norms, blob headers — would
   * otherwise each wait in turn behind the big reads in the file system's thread pool).
   */
  const loadLayer = async (l: number): Promise<LayerWeights> => {
    const p = `layers.${l}.`;
    const I = c.intermediateSize[l];
    const shared = l >= firstShared;
    // KV-shared layers may still carry k/v tensors (real checkpoints do); they are unused.
    const none = Promise.resolve(null);
    const correction = vec(p + 'altup.correction_coefs.weight', [A, A]).then((v) => {
      const clip = c.altupCoefClip; // [modeling_gemma3n.py, Gemma3nTextAltUp.correct: clamp_(-clip, clip)]
      if (clip !== null) for (let i = 0; i < v.length; i++) v[i] = Math.min(clip, Math.max(-clip, v[i]));
      return v;
    });
    const layer = await allOf({
      input_layernorm: vec(p + 'input_layernorm.weight', [H]),
      post_attention_layernorm: vec(p + 'post_attention_layernorm.weight', [H]),
      pre_feedforward_layernorm: vec(p + 'pre_feedforward_layernorm.weight', [H]),
      post_feedforward_layernorm: vec(p + 'post_feedforward_layernorm.weight', [H]),
      self_attn: allOf({
        q_proj: linear(p + 'self_attn.q_proj.weight', nQ, H),
        k_proj: shared ? none : linear(p + 'self_attn.k_proj.weight', nKV, H),
        v_proj: shared ? none : linear(p + 'self_attn.v_proj.weight', nKV, H),
        o_proj: linear(p + 'self_attn.o_proj.weight', H, nQ),
        q_norm: vec(p + 'self_attn.q_norm.weight', [c.headDim]),
        k_norm: shared ? none : vec(p + 'self_attn.k_norm.weight', [c.headDim]),
      }),
      mlp: allOf({
        gate_proj: linear(p + 'mlp.gate_proj.weight', I, H),
        up_proj: linear(p + 'mlp.up_proj.weight', I, H),
        down_proj: linear(p + 'mlp.down_proj.weight', H, I),
      }),
      altup: allOf({
        correct_output_scale: vec(p + 'altup.correct_output_scale', [H]),
        correction_coefs: correction,
        prediction_coefs: vec(p + 'altup.prediction_coefs.weight', [A * A, A]),
        modality_router: vec(p + 'altup.modality_router.weight', [A, H]),
        router_norm: vec(p + 'altup.router_norm.weight', [H]),
      }),
      laurel: allOf({
        linear_left: linear(p + 'laurel.linear_left.weight', c.laurelRank, H),
        linear_right: linear(p + 'laurel.linear_right.weight', H, c.laurelRank),
        post_laurel_norm: vec(p + 'laurel.post_laurel_norm.weight', [H]),
      }),
      per_layer_input_gate: linear(p + 'per_layer_input_gate.weight', P, H),
      per_layer_projection: linear(p + 'per_layer_projection.weight', H, P),
      post_per_layer_input_norm: vec(p + 'post_per_layer_input_norm.weight', [H]),
    });
    done += shared ? 3 : 0; // keep the progress total honest for layers without k/v
    return layer;
  };

  const parts = [input, ...layerParts, output];
  const filled = fill();
  // A failure while starting the reads fails every part not yet settled (earlier parts keep
  // their own outcome): whoever awaits one gets the error, nobody hangs.
  filled.catch((e: unknown) => {
    for (const part of parts) part.reject(e);
  });
  const all = Promise.all(parts.map((d) => d.promise)).then(() => {
    w.loading = null;
    mark('weights: all ready');
  });
  all.catch(() => {}); // observed through the parts by whoever awaits them
  if (!background) {
    await filled;
    await all;
    return w;
  }
  w.loading = { input: input.promise, layers: layerParts.map((d) => d.promise), output: output.promise, all };
  opts.onProgress?.(total, total); // the rest arrives while the first step runs
  reporting = false;
  return w;
}

/** An object of promises as a promise of the object (every member awaited, all started already). */
async function allOf<T extends Record<string, unknown>>(parts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const keys = Object.keys(parts) as (keyof T)[];
  const values = await Promise.all(keys.map((k) => parts[k]));
  return Object.fromEntries(keys.map((k, i) => [k, values[i]])) as T;
}

interface Deferred {
  promise: Promise<void>;
  resolve(p: Promise<void>): void;
  reject(e: unknown): void;
}

/** A promise settled from outside (resolve adopts another promise; later calls are no-ops). */
function deferred(): Deferred {
  let resolve!: (p: Promise<void>) => void, reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a part nobody awaits (the model was never run) must not be an unhandled rejection
  return { promise, resolve, reject };
}

/**
 * The Gemma 3n text decoder [modeling_gemma3n.py, Gemma3nTextModel + Gemma3nForCausalLM].
 *
 *   e        = embed_tokens(ids) · √H
 *   ple      = per-layer inputs (per_layer_embedding.ts)            [T, L, P]
 *   streams  = [e, altup_projections[i](e) rescaled to |e|]          [A, T, H]
 *   for each layer: streams = decoder_layer(streams, ple[:, layer])   (decoder_layer.ts)
 *   h        = norm(mean over streams of [s0, altup_unembed_projections[i](s_i) rescaled to |s0|])
 *   logits   = softcap(h · embed_tokensᵀ),  softcap(x) = c·tanh(x/c)
 *
 * `forward` processes T new tokens after the ones already in the KV cache, so one function
 * serves the prompt (prefill, T = prompt length) and decoding (T = 1).
 */
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels } from '../kernels/kernels.js';
import { matchMagnitude } from './altup.js';
import type { TensorStore } from '../checkpoint/checkpoint.js';
import { openTensorStore } from '../checkpoint/open_store.js';
import { SlicedStore, slicedConfig, type SliceSpec } from '../checkpoint/matformer.js';
import { parseModelConfig, type ModelConfig, type TextConfig } from '../checkpoint/config.js';
import { decoderLayer } from './decoder_layer.js';
import { explainInputs, explainLayers, type StepExplain } from './explain.js';
import type { ForwardContext, SequenceRows } from './forward_context.js';
import { KVCache } from './kv_cache.js';
import { rowOps } from './ops.js';
import { getPerLayerInputs, projectPerLayerInputs } from './per_layer_embedding.js';
import { RotaryEmbedding } from './rope.js';
import { Scratch } from './scratch.js';
import type { Tracer } from './trace.js';
import type { BatchSequence, ForwardOptions, ForwardResult } from './causal_lm.js';
import { packedVersionOf } from '../checkpoint/packed_format.js';
import { loadTextWeights, type LoadOptions, type TextWeights } from '../checkpoint/weights.js';
import { mark } from '../util/marks.js';

export type { BatchSequence, ForwardOptions, ForwardResult } from './causal_lm.js';

/**
 * Embeds the reserved ids of a tower ("hard tokens", e.g. end-of-image) in place of the
 * text table: Gemma3nMultimodalEmbedder's input_ids path (src/encoders/multimodal_embedder.ts).
 */
export interface HardTokenEmbedder {
  owns(id: number): boolean;
  /** [ids.length, H] embeddings (no √H scale). */
  embedIds(ids: ArrayLike<number>): Float32Array;
}

export class Gemma3nTextModel {
  /** Vision/audio embedders for their reserved ids (set by the multimodal wrapper). */
  hardEmbedders: HardTokenEmbedder[] = [];
  /** Each layer's RoPE: rope_local_base_freq on sliding layers, rope_theta on full ones. */
  private readonly ropes: RotaryEmbedding[];
  /** The layers' intermediate buffers, reused from token to token (in the kernels' memory when they have some). */
  private readonly work: Scratch;
  /** Written by each layer's MLP for the explain trace (ForwardContext.ffnActiveFraction). */
  private readonly ffnActiveFraction: Float64Array;

  constructor(readonly config: TextConfig, readonly weights: TextWeights, readonly kernels: Kernels) {
    const sliding = new RotaryEmbedding(config.headDim, config.ropeThetaSliding);
    const full = new RotaryEmbedding(config.headDim, config.ropeThetaFull);
    this.ropes = config.layerTypes.map((type) => (type === 'sliding_attention' ? sliding : full));
    this.ffnActiveFraction = new Float64Array(config.numHiddenLayers);
    this.work = new Scratch(kernels);
  }

  /**
   * Loads config.json and the text weights of a model folder. With `slice`, a MatFormer
   * sub-model is cut from the checkpoint on the fly (src/checkpoint/matformer.ts).
   */
  static async load(folder: FileProvider, kernels: Kernels, opts: LoadOptions & { weightsFile?: string; slice?: SliceSpec } = {}): Promise<{ model: Gemma3nTextModel; modelConfig: ModelConfig; checkpoint: TensorStore }> {
    const where = `${folder.location}/config.json`;
    let configText = await folder.readText('config.json');
    let checkpoint: TensorStore = await openTensorStore(folder, opts.weightsFile); // safetensors, or a GGUF file
    if (opts.slice) {
      const raw = parseModelConfig(configText, where).raw;
      checkpoint = await SlicedStore.create(checkpoint, raw, opts.slice);
      configText = JSON.stringify(slicedConfig(raw, opts.slice));
    }
    const modelConfig = parseModelConfig(configText, where);
    packedVersionOf(modelConfig.raw, where); // an unknown packed format version is refused here
    const weights = await loadTextWeights(checkpoint, modelConfig.text, kernels, opts);
    return { model: new Gemma3nTextModel(modelConfig.text, weights, kernels), modelConfig, checkpoint };
  }

  /** True while the PLE table (or a packed embedding) is read from the checkpoint on demand. */
  get readsCheckpoint(): boolean {
    return this.weights.readsCheckpoint;
  }

  /** A fresh KV cache; `rewindSlack` lets a chat rewind that many positions cheaply. */
  newCache(rewindSlack = 0): KVCache {
    return new KVCache(this.config, rewindSlack, this.kernels);
  }

  /**
   * e = embed_tokens(ids) · √H (the scale is an f32 scalar, as the reference's buffer), then
   * ids owned by a vision/audio embedder are replaced by its hard embedding [Gemma3nModel.forward].
   */
  async embed(ids: ArrayLike<number>): Promise<Float32Array> {
    const H = this.config.hiddenSize;
    const e = new Float32Array(ids.length * H);
    await this.weights.embed_tokens.lookup(ids, e);
    const scale = Math.fround(Math.sqrt(H));
    for (let i = 0; i < e.length; i++) e[i] *= scale;
    for (const emb of this.hardEmbedders) {
      const pos: number[] = [];
      for (let i = 0; i < ids.length; i++) if (emb.owns(ids[i])) pos.push(i);
      if (pos.length === 0) continue;
      const hard = emb.embedIds(pos.map((p) => ids[p]));
      pos.forEach((p, j) => e.set(hard.subarray(j * H, (j + 1) * H), p * H));
    }
    return e;
  }

  async forward(ids: ArrayLike<number>, cache: KVCache, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const c = this.config, k = this.kernels, w = this.weights;
    const T = ids.length, H = c.hiddenSize, TH = T * H;
    const trace = opts.trace;
    if (T === 0) throw new RangeError('forward: no tokens');
    this.checkIds(ids, cache);
    const e = opts.inputsEmbeds ?? (await this.embed(ids));
    if (e.length !== TH) throw new RangeError(`forward: inputsEmbeds has ${e.length} values, expected ${T}x${H}`);
    const h = await this.forwardRows(ids, e, [{ cache, first: 0, count: T }], trace, opts.explain);

    const mode = opts.logits ?? 'last';
    if (mode === 'none') return { logits: new Float32Array(0), rows: 0 };
    const rows = mode === 'all' ? T : 1;
    const logits = new Float32Array(rows * c.vocabSize);
    k.linear(w.lm_head, mode === 'all' ? h : h.subarray((T - 1) * H), rows, logits);
    const cap = c.finalLogitSoftcapping;
    if (cap !== null) k.softcap(logits, logits.length, cap);
    if (mode === 'all') trace?.('logits', logits, [1, T, c.vocabSize]);
    return { logits, rows };
  }

  /**
   * One step for several sequences at once (continuous batching): each sequence's new tokens
   * (a decode token, or a chunk of its prompt) after the ones in its own cache. Their rows are
   * laid end to end so every linear runs once over all of them (the weights are read once);
   * RoPE, the KV append and attention run per sequence (forward_context.ts). Every row is
   * computed as `forward` computes it alone, so the logits are bit-identical to running each
   * sequence by itself (test/model/batch.test.ts). Returns, per sequence, the logits of its
   * last row, or an empty array when its `logits` is false (a prompt chunk before the end).
   */
  async forwardBatch(batch: readonly BatchSequence[]): Promise<Float32Array[]> {
    const c = this.config, H = c.hiddenSize, V = c.vocabSize;
    if (batch.length === 0) return [];
    const T = batch.reduce((n, s) => n + s.ids.length, 0);
    const ids = new Int32Array(T);
    const e = new Float32Array(T * H);
    const sequences: SequenceRows[] = [];
    for (const [i, s] of batch.entries()) {
      const n = s.ids.length, first = sequences.length > 0 ? sequences[i - 1].first + sequences[i - 1].count : 0;
      if (n === 0) throw new RangeError(`forwardBatch: sequence ${i} has no tokens`);
      if (batch.findIndex((o) => o.cache === s.cache) !== i) throw new RangeError(`forwardBatch: sequence ${i} shares its cache with another`);
      this.checkIds(s.ids, s.cache);
      if (s.inputsEmbeds && s.inputsEmbeds.length !== n * H) throw new RangeError(`forwardBatch: sequence ${i} inputsEmbeds has ${s.inputsEmbeds.length} values, expected ${n}x${H}`);
      ids.set(Array.from(s.ids), first);
      if (s.inputsEmbeds) e.set(s.inputsEmbeds, first * H);
      sequences.push({ cache: s.cache, first, count: n });
    }
    // One embedding lookup for the rows of every sequence that gives no embeddings of its own.
    const looked = batch.flatMap((s, i) => (s.inputsEmbeds ? [] : [sequences[i]]));
    if (looked.length === batch.length) e.set(await this.embed(ids));
    else if (looked.length > 0) {
      const rows = looked.flatMap(({ first, count }) => Array.from({ length: count }, (_, j) => ids[first + j]));
      const emb = await this.embed(rows);
      let r = 0;
      for (const { first, count } of looked) { e.set(emb.subarray(r * H, (r + count) * H), first * H); r += count; }
    }
    const h = await this.forwardRows(ids, e, sequences);
    // The LM head on the last row of each sequence that wants logits: one GEMM over those rows.
    const want = batch.flatMap((s, i) => (s.logits === false ? [] : [i]));
    const last = new Float32Array(want.length * H);
    want.forEach((i, j) => { const r = sequences[i].first + sequences[i].count - 1; last.set(h.subarray(r * H, (r + 1) * H), j * H); });
    const logits = new Float32Array(want.length * V);
    if (want.length > 0) {
      this.kernels.linear(this.weights.lm_head, last, want.length, logits);
      if (c.finalLogitSoftcapping !== null) this.kernels.softcap(logits, logits.length, c.finalLogitSoftcapping);
    }
    const out = batch.map(() => new Float32Array(0));
    want.forEach((i, j) => { out[i] = logits.subarray(j * V, (j + 1) * V); });
    return out;
  }

  private checkIds(ids: ArrayLike<number>, cache: KVCache): void {
    const c = this.config, T = ids.length;
    for (let i = 0; i < T; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new RangeError(`forward: token id ${id} at index ${i} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (cache.position + T > c.maxPositionEmbeddings) throw new RangeError(`forward: ${cache.position + T} positions exceed max_position_embeddings (${c.maxPositionEmbeddings})`);
  }

  /**
   * The decoder on the step's rows, given their scaled embeddings e [T, H]: per-layer inputs,
   * AltUp, the layers, the un-embedding. Returns the final normed hidden states [T, H] and
   * advances every sequence's cache.
   */
  private async forwardRows(ids: ArrayLike<number>, e: Float32Array, sequences: readonly SequenceRows[], trace?: Tracer, ex?: StepExplain): Promise<Float32Array> {
    const c = this.config, k = this.kernels, w = this.weights;
    const T = ids.length, H = c.hiddenSize, A = c.altupNumInputs, L = c.numHiddenLayers, P = c.hiddenSizePerLayerInput, TH = T * H;
    trace?.('inputs_embeds', e, [1, T, H]);
    // Per-layer embeddings [T, L, P]: the table half, then the projection of e.
    if (T > 1) mark('prefill: start');
    // Weights still arriving (LoadOptions.background): each part is awaited just before its use.
    const loading = w.loading;
    const pleRows = await getPerLayerInputs(w, c, ids);
    if (loading) await loading.input;
    const ple = projectPerLayerInputs(k, w, c, e, pleRows, T);
    const cache = sequences.length === 1 ? sequences[0].cache : null; // explain covers one sequence
    if (ex && cache) explainInputs(ex, c, ids, cache, w.embed_tokens_per_layer);
    trace?.('per_layer_inputs', ple, [1, T, L, P]);

    // AltUp streams: stream 0 is e, the others are learned projections of e at e's magnitude.
    // (A work buffer: from here to the return there is no await.)
    const streams = this.work.take('model.streams', A * TH);
    streams.set(e, 0);
    for (let s = 1; s < A; s++) {
      const view = streams.subarray(s * TH, (s + 1) * TH);
      k.linear(w.altup_projections[s - 1], e, T, view);
      matchMagnitude(view, e, T, H);
    }
    trace?.('hidden_states.0', streams, [A, 1, T, H]);

    const ctx: ForwardContext = {
      kernels: k, config: c, work: this.work, T,
      sequences,
      ropes: this.ropes, trace, ffnActiveFraction: this.ffnActiveFraction,
    };
    const pleSlice = new Float32Array(T * P);
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) pleSlice.set(ple.subarray((t * L + l) * P, (t * L + l + 1) * P), t * P);
      if (loading) await loading.layers[l];
      decoderLayer(ctx, w.layers[l], l, streams, pleSlice);
      if (T > 1) mark(`prefill: layer ${l} done`);
      trace?.(`hidden_states.${l + 1}`, streams, [A, 1, T, H]);
    }
    if (ex && cache) explainLayers(ex, c, cache, c.intermediateSize, this.ffnActiveFraction);
    for (const seq of sequences) {
      seq.cache.position += seq.count;
      seq.cache.evictSliding();
    }
    if (ex && cache) ex.kvCacheBytes = cache.bytes;

    if (loading) await loading.output;
    // Un-embed the extra streams back to stream 0's space and average them.
    const s0 = streams.subarray(0, TH);
    const h = new Float32Array(s0);
    const tmp = new Float32Array(TH);
    for (let s = 1; s < A; s++) {
      k.linear(w.altup_unembed_projections[s - 1], streams.subarray(s * TH, (s + 1) * TH), T, tmp);
      matchMagnitude(tmp, s0, T, H);
      for (let i = 0; i < TH; i++) h[i] += tmp[i];
    }
    for (let i = 0; i < TH; i++) h[i] /= A;
    rowOps(k).rmsNorm(h, w.norm, T, H, c.rmsNormEps);
    trace?.('last_hidden_state', h, [1, T, H]);

    return h;
  }
}

/**
 * The Gemma 4 (E2B/E4B) text decoder [modeling_gemma4.py, Gemma4TextModel + the tied LM head].
 * It shares Gemma 3n's attention, KV cache (with KV sharing), RoPE, per-layer embeddings, norms
 * and kernels; what differs is in gemma4_decoder_layer.ts and the config (per-layer head sizes,
 * proportional RoPE on full layers, double-wide MLP in shared layers).
 *
 *   e      = embed_tokens(ids) · √H                  (media placeholder ids → pad id, both tables)
 *   pli    = per-layer inputs (per_layer_embedding.ts) [T, L, P]
 *   for each layer: x = gemma4_decoder_layer(x, pli[:, l])
 *   logits = softcap(norm(x) · embed_tokensᵀ)
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import { openTensorStore } from '../checkpoint/open_store.js';
import { parseGemma4Config, type Gemma4Config, type Gemma4TextConfig } from '../checkpoint/gemma4_config.js';
import { loadGemma4TextWeights, type Gemma4TextWeights } from '../checkpoint/gemma4_weights.js';
import type { LoadOptions } from '../checkpoint/weights.js';
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels } from '../kernels/kernels.js';
import type { BatchSequence, CausalLM, ForwardOptions, ForwardResult } from './causal_lm.js';
import { explainInputs, explainLayers, type StepExplain } from './explain.js';
import type { ForwardContext, SequenceRows } from './forward_context.js';
import { gemma4DecoderLayer } from './gemma4_decoder_layer.js';
import { KVCache } from './kv_cache.js';
import { rmsNorm } from './ops.js';
import { getPerLayerInputs, projectPerLayerInputs } from './per_layer_embedding.js';
import { RotaryEmbedding } from './rope.js';
import { Scratch } from './scratch.js';
import type { Tracer } from './trace.js';

export class Gemma4TextModel implements CausalLM {
  /** Token ids replaced by the pad id before both embedding lookups (the media placeholders). */
  placeholderIds = new Set<number>();
  private readonly ropes: RotaryEmbedding[];
  private readonly work = new Scratch();
  /** ForwardContext.ffnActiveFraction: Gemma 4's MLPs are dense, so it stays 1. */
  private readonly ffnActiveFraction: Float64Array;

  constructor(readonly config: Gemma4TextConfig, readonly weights: Gemma4TextWeights, readonly kernels: Kernels) {
    this.ffnActiveFraction = new Float64Array(config.numHiddenLayers).fill(1);
    const byKey = new Map<string, RotaryEmbedding>();
    this.ropes = config.layerTypes.map((type, l) => {
      const hd = config.layerHeadDims[l], r = config.ropeParameters[type];
      const pairs = r.ropeType === 'proportional' ? Math.floor((r.partialRotaryFactor * hd) / 2) : hd / 2;
      const key = `${hd}/${r.ropeTheta}/${pairs}`;
      let rope = byKey.get(key);
      if (!rope) byKey.set(key, (rope = new RotaryEmbedding(hd, r.ropeTheta, pairs)));
      return rope;
    });
  }

  static async load(folder: FileProvider, kernels: Kernels, opts: LoadOptions & { weightsFile?: string } = {}): Promise<{ model: Gemma4TextModel; modelConfig: Gemma4Config; checkpoint: TensorStore }> {
    const modelConfig = parseGemma4Config(await folder.readText('config.json'), `${folder.location}/config.json`);
    const checkpoint = await openTensorStore(folder, opts.weightsFile); // safetensors, or a gemma4 GGUF (checkpoint/gguf/gemma4.ts)
    const weights = await loadGemma4TextWeights(checkpoint, modelConfig.text, kernels, opts);
    const model = new Gemma4TextModel(modelConfig.text, weights, kernels);
    for (const k of ['image_token_id', 'audio_token_id', 'video_token_id']) if (modelConfig.tokenIds[k] !== undefined) model.placeholderIds.add(modelConfig.tokenIds[k]);
    return { model, modelConfig, checkpoint };
  }

  newCache(rewindSlack = 0): KVCache {
    return new KVCache(this.config, rewindSlack, this.kernels);
  }

  /** Media placeholders read the pad row of both tables [Gemma4Model.forward]. */
  private tableIds(ids: ArrayLike<number>): Int32Array {
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = this.placeholderIds.has(ids[i]) ? this.config.padTokenId : ids[i];
    return out;
  }

  /** e = embed_tokens(ids) · √H (the scale rounded to f32, the weights' compute dtype here). */
  async embed(ids: ArrayLike<number>): Promise<Float32Array> {
    const H = this.config.hiddenSize;
    const e = new Float32Array(ids.length * H);
    await this.weights.embed_tokens.lookup(this.tableIds(ids), e);
    const scale = Math.fround(Math.sqrt(H));
    for (let i = 0; i < e.length; i++) e[i] = Math.fround(e[i] * scale);
    return e;
  }

  /** True while the PLE table (or a packed embedding) is read from the checkpoint on demand. */
  get readsCheckpoint(): boolean {
    return this.weights.readsCheckpoint;
  }

  async forward(ids: ArrayLike<number>, cache: KVCache, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const c = this.config, k = this.kernels, w = this.weights;
    const T = ids.length, H = c.hiddenSize;
    if (T === 0) throw new RangeError('forward: no tokens');
    this.checkIds(ids, cache);
    const e = opts.inputsEmbeds ?? (await this.embed(ids));
    if (e.length !== T * H) throw new RangeError(`forward: inputsEmbeds has ${e.length} values, expected ${T}x${H}`);
    const x = await this.forwardRows(ids, e, [{ cache, first: 0, count: T }], opts.trace, opts.explain);

    const mode = opts.logits ?? 'last';
    if (mode === 'none') return { logits: new Float32Array(0), rows: 0 };
    const rows = mode === 'all' ? T : 1;
    const logits = new Float32Array(rows * c.vocabSize);
    k.linear(w.lm_head, mode === 'all' ? x : x.subarray((T - 1) * H), rows, logits);
    if (c.finalLogitSoftcapping !== null) k.softcap(logits, logits.length, c.finalLogitSoftcapping);
    if (mode === 'all') opts.trace?.('logits', logits, [1, T, c.vocabSize]);
    return { logits, rows };
  }

  /**
   * One step for several sequences at once (continuous batching), as Gemma3nTextModel.forwardBatch:
   * their rows laid end to end so every linear reads its weights once; RoPE, the KV append and
   * attention per sequence. Each row is computed as `forward` computes it alone (bit-identical).
   */
  async forwardBatch(batch: readonly BatchSequence[]): Promise<Float32Array[]> {
    const c = this.config, H = c.hiddenSize, V = c.vocabSize;
    if (batch.length === 0) return [];
    const T = batch.reduce((n, s) => n + s.ids.length, 0);
    const ids = new Int32Array(T);
    const e = new Float32Array(T * H);
    const sequences: SequenceRows[] = [];
    for (const [i, s] of batch.entries()) {
      const n = s.ids.length, first = i > 0 ? sequences[i - 1].first + sequences[i - 1].count : 0;
      if (n === 0) throw new RangeError(`forwardBatch: sequence ${i} has no tokens`);
      if (batch.findIndex((o) => o.cache === s.cache) !== i) throw new RangeError(`forwardBatch: sequence ${i} shares its cache with another`);
      this.checkIds(s.ids, s.cache);
      if (s.inputsEmbeds && s.inputsEmbeds.length !== n * H) throw new RangeError(`forwardBatch: sequence ${i} inputsEmbeds has ${s.inputsEmbeds.length} values, expected ${n}x${H}`);
      ids.set(Array.from(s.ids), first);
      e.set(s.inputsEmbeds ?? (await this.embed(s.ids)), first * H);
      sequences.push({ cache: s.cache, first, count: n });
    }
    const x = await this.forwardRows(ids, e, sequences);
    const want = batch.flatMap((s, i) => (s.logits === false ? [] : [i]));
    const last = new Float32Array(want.length * H);
    want.forEach((i, j) => { const r = sequences[i].first + sequences[i].count - 1; last.set(x.subarray(r * H, (r + 1) * H), j * H); });
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
    const c = this.config;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new RangeError(`forward: token id ${id} at index ${i} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (cache.position + ids.length > c.maxPositionEmbeddings) throw new RangeError(`forward: ${cache.position + ids.length} positions exceed max_position_embeddings (${c.maxPositionEmbeddings})`);
  }

  /**
   * The decoder on the step's rows, given their scaled (merged) embeddings e [T, H]: per-layer
   * inputs, the layers, the final norm. Returns the normed hidden states [T, H] and advances
   * every sequence's cache.
   */
  private async forwardRows(ids: ArrayLike<number>, e: Float32Array, sequences: readonly SequenceRows[], trace?: Tracer, ex?: StepExplain): Promise<Float32Array> {
    const c = this.config, k = this.kernels, w = this.weights;
    const T = ids.length, H = c.hiddenSize, L = c.numHiddenLayers, P = c.hiddenSizePerLayerInput;
    const x = new Float32Array(e);
    trace?.('inputs_embeds', x, [1, T, H]);
    const tableIds = this.tableIds(ids);
    const pli = projectPerLayerInputs(k, w, c, x, await getPerLayerInputs(w, c, tableIds), T); // [T, L, P]
    const cache = sequences.length === 1 ? sequences[0].cache : null; // explain covers one sequence
    if (ex && cache) explainInputs(ex, c, tableIds, cache, w.embed_tokens_per_layer);
    trace?.('per_layer_inputs', pli, [1, T, L, P]);
    trace?.('hidden_states.0', x, [1, T, H]);

    const ctx: ForwardContext<Gemma4TextConfig> = {
      kernels: k, config: c, work: this.work, T,
      sequences,
      ropes: this.ropes, trace, ffnActiveFraction: this.ffnActiveFraction,
    };
    const slice = this.work.take('g4.pli', T * P);
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) slice.set(pli.subarray((t * L + l) * P, (t * L + l + 1) * P), t * P);
      gemma4DecoderLayer(ctx, w.layers[l], l, x, slice);
      trace?.(`layer_outputs.${l}`, x, [1, T, H]);
      if (l < L - 1) trace?.(`hidden_states.${l + 1}`, x, [1, T, H]);
    }
    if (ex && cache) explainLayers(ex, c, cache, c.layerIntermediateSizes, this.ffnActiveFraction, c.layerHeadDims);
    for (const seq of sequences) {
      seq.cache.position += seq.count;
      seq.cache.evictSliding();
    }
    if (ex && cache) ex.kvCacheBytes = cache.bytes;

    rmsNorm(x, w.norm, T, H, c.rmsNormEps);
    trace?.('last_hidden_state', x, [1, T, H]);
    trace?.(`hidden_states.${L}`, x, [1, T, H]);
    return x;
  }
}

/**
 * Gemma 4's vision tower, `model.vision_tower` [modeling_gemma4.py, Gemma4VisionModel]: a ViT
 * over 16×16 patches with learned 2-D position tables and 2-D RoPE, then 3×3 average pooling.
 *
 *   x = input_proj(2·(pixel − 0.5)) + table[0][x_pos] + table[1][y_pos]     (padding: no position)
 *   per layer (Gemma sandwich norms, no layer scalar):
 *     x = x + post_attention_layernorm(attn(input_layernorm(x)))
 *     x = x + post_feedforward_layernorm(down(gelu_tanh(gate(y)) ⊙ up(y))),  y = pre_feedforward_layernorm(x)
 *   attn: clipped q/k/v → q_norm, k_norm, weightless v_norm → 2-D RoPE → softmax(q·kᵀ · 1.0) · v
 *         over the image's own valid patches (bidirectional) → clipped o_proj
 *   pooled cell = Σ of its k×k patches / k², × √hidden; cells without patches are dropped
 *
 * Each image is independent (the reference masks padding keys per image), so images are
 * encoded one at a time and padding rows are never computed.
 */
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import type { Kernels, LinearWeight } from '../../kernels/kernels.js';
import { rmsNorm } from '../../model/ops.js';
import type { Tracer } from '../../model/trace.js';
import { ClippedLinear } from '../clipped_linear.js';
import { AxialRope } from './axial_rope.js';
import type { Gemma4VisionConfig } from './config.js';
import { loadTowerLinear } from '../tower_weights.js';

interface EncoderLayer {
  input_layernorm: Float32Array;
  post_attention_layernorm: Float32Array;
  pre_feedforward_layernorm: Float32Array;
  post_feedforward_layernorm: Float32Array;
  q_proj: ClippedLinear; k_proj: ClippedLinear; v_proj: ClippedLinear; o_proj: ClippedLinear;
  q_norm: Float32Array; k_norm: Float32Array;
  gate_proj: ClippedLinear; up_proj: ClippedLinear; down_proj: ClippedLinear;
}

/** One image's pixels as the processor gives them (preprocess.ts). */
export interface Gemma4VisionInput {
  /** [maxPatches, 3·p²] in [0, 1]. */
  pixelValues: Float32Array;
  /** [maxPatches, 2] (x, y); padding rows (−1, −1). */
  positionIds: Int32Array;
  maxPatches: number;
}

export interface Gemma4VisionOutput {
  /** [numSoftTokens, hidden]: the valid pooled cells (the tower's last_hidden_state). */
  softTokens: Float32Array;
  numSoftTokens: number;
  /** [maxPatches / k², hidden]: every cell, empty ones zero (the reference's pooler output). */
  pooled: Float32Array;
  /** Per pooled cell: true when it holds patches. */
  poolerMask: Uint8Array;
}

export class Gemma4VisionTower {
  private readonly rope: AxialRope;

  private constructor(
    readonly config: Gemma4VisionConfig,
    private readonly kernels: Kernels,
    private readonly inputProj: LinearWeight,
    /** [2, positionEmbeddingSize, hidden]: x table then y table. */
    private readonly positionTable: Float32Array,
    private readonly layers: EncoderLayer[],
  ) {
    this.rope = new AxialRope(config.headDim, config.ropeTheta);
  }

  static async load(store: TensorStore, kernels: Kernels, c: Gemma4VisionConfig, prefix = 'model.vision_tower'): Promise<Gemma4VisionTower> {
    const D = c.hiddenSize, I = c.intermediateSize, hd = c.headDim, P = 3 * c.patchSize ** 2;
    const nQ = c.numAttentionHeads * hd, nKV = c.numKeyValueHeads * hd, clip = c.useClippedLinears;
    const inputProj = await loadTowerLinear(store, `${prefix}.patch_embedder.input_proj.weight`, [D, P], kernels);
    const positionTable = await store.readF32(`${prefix}.patch_embedder.position_embedding_table`, [2, c.positionEmbeddingSize, D]);
    const layers: EncoderLayer[] = [];
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const p = `${prefix}.encoder.layers.${l}`;
      const vec = (n: string, d: number) => store.readF32(`${p}.${n}.weight`, [d]);
      const lin = (n: string, o: number, i: number) => ClippedLinear.load(store, kernels, `${p}.${n}`, o, i, clip);
      layers.push({
        input_layernorm: await vec('input_layernorm', D),
        post_attention_layernorm: await vec('post_attention_layernorm', D),
        pre_feedforward_layernorm: await vec('pre_feedforward_layernorm', D),
        post_feedforward_layernorm: await vec('post_feedforward_layernorm', D),
        q_proj: await lin('self_attn.q_proj', nQ, D),
        k_proj: await lin('self_attn.k_proj', nKV, D),
        v_proj: await lin('self_attn.v_proj', nKV, D),
        o_proj: await lin('self_attn.o_proj', D, nQ),
        q_norm: await vec('self_attn.q_norm', hd),
        k_norm: await vec('self_attn.k_norm', hd),
        gate_proj: await lin('mlp.gate_proj', I, D),
        up_proj: await lin('mlp.up_proj', I, D),
        down_proj: await lin('mlp.down_proj', D, I),
      });
    }
    return new Gemma4VisionTower(c, kernels, inputProj, positionTable, layers);
  }

  /** The valid patches (position ≥ 0) come first, as the processor writes them. */
  private static validPatches(input: Gemma4VisionInput): number {
    let n = 0;
    while (n < input.maxPatches && input.positionIds[2 * n] >= 0) n++;
    for (let i = n; i < input.maxPatches; i++) if (input.positionIds[2 * i] >= 0) throw new RangeError(`vision: patch ${i} has a position after padding started at ${n}`);
    return n;
  }

  /** Gemma4VisionPatchEmbedder: [N, hidden] for the N valid patches. */
  embedPatches(input: Gemma4VisionInput, N: number): Float32Array {
    const c = this.config, D = c.hiddenSize, P = 3 * c.patchSize ** 2, S = c.positionEmbeddingSize;
    const px = new Float32Array(N * P);
    for (let i = 0; i < N * P; i++) px[i] = Math.fround(2 * Math.fround(input.pixelValues[i] - 0.5));
    const x = new Float32Array(N * D);
    this.kernels.linear(this.inputProj, px, N, x);
    const t = this.positionTable;
    for (let n = 0; n < N; n++) {
      const xp = input.positionIds[2 * n], yp = input.positionIds[2 * n + 1];
      if (xp >= S || yp >= S) throw new RangeError(`vision: patch position (${xp}, ${yp}) is outside the ${S}-entry position tables`);
      for (let d = 0; d < D; d++) x[n * D + d] += Math.fround(t[xp * D + d] + t[(S + yp) * D + d]);
    }
    return x;
  }

  encode(input: Gemma4VisionInput, trace?: Tracer): Gemma4VisionOutput {
    const c = this.config, D = c.hiddenSize, k = c.poolingKernelSize;
    const P = 3 * c.patchSize ** 2;
    if (input.pixelValues.length !== input.maxPatches * P) throw new RangeError(`vision: pixelValues has ${input.pixelValues.length} values, expected [${input.maxPatches}, ${P}]`);
    if (input.positionIds.length !== input.maxPatches * 2) throw new RangeError(`vision: positionIds has ${input.positionIds.length} values, expected [${input.maxPatches}, 2]`);
    if (input.maxPatches % (k * k) !== 0) throw new RangeError(`vision: max_patches ${input.maxPatches} is not a multiple of ${k * k}`);
    const N = Gemma4VisionTower.validPatches(input);
    if (N === 0) throw new RangeError('vision: the image has no patches');

    let x = this.embedPatches(input, N);
    trace?.('vision.patch_embeddings', x, [N, D]);
    const { cos, sin } = this.rope.tables(input.positionIds, N);
    for (let l = 0; l < this.layers.length; l++) {
      x = this.encoderLayer(this.layers[l], x, N, cos, sin);
      trace?.(`vision.encoder.layers.${l}`, x, [N, D]);
    }
    return this.pool(x, N, input, trace);
  }

  private encoderLayer(w: EncoderLayer, x: Float32Array, N: number, cos: Float32Array, sin: Float32Array): Float32Array {
    const c = this.config, D = c.hiddenSize, hd = c.headDim, nH = c.numAttentionHeads, nKV = c.numKeyValueHeads, eps = c.rmsNormEps;
    // Attention
    const h = rmsNorm(x, w.input_layernorm, N, D, eps, new Float32Array(N * D));
    const q = w.q_proj.forward(h.slice(), N), kk = w.k_proj.forward(h.slice(), N), v = w.v_proj.forward(h, N);
    rmsNorm(q, w.q_norm, N * nH, hd, eps);
    rmsNorm(kk, w.k_norm, N * nKV, hd, eps);
    rmsNorm(v, null, N * nKV, hd, eps);
    this.rope.apply(q, N, nH, cos, sin);
    this.rope.apply(kk, N, nKV, cos, sin);
    const ctx = new Float32Array(N * nH * hd);
    // Bidirectional: every query is placed after the last key, so the causal kernel masks nothing.
    this.kernels.attention({ q, k: kk, v, T: N, S: N, numHeads: nH, numKvHeads: nKV, headDim: hd, qPos0: N - 1, kPos0: 0, window: 0, scale: 1.0, out: ctx });
    const attn = w.o_proj.forward(ctx, N);
    rmsNorm(attn, w.post_attention_layernorm, N, D, eps);
    for (let i = 0; i < N * D; i++) x[i] += attn[i];
    // MLP
    const y = rmsNorm(x, w.pre_feedforward_layernorm, N, D, eps, new Float32Array(N * D));
    const gate = w.gate_proj.forward(y.slice(), N), up = w.up_proj.forward(y, N);
    this.kernels.geluMul(gate, up, N * c.intermediateSize);
    const mlp = w.down_proj.forward(gate, N);
    rmsNorm(mlp, w.post_feedforward_layernorm, N, D, eps);
    for (let i = 0; i < N * D; i++) x[i] += mlp[i];
    return x;
  }

  /** Gemma4VisionPooler._avg_pool_by_positions, then × √hidden; empty cells dropped. */
  private pool(x: Float32Array, N: number, input: Gemma4VisionInput, trace?: Tracer): Gemma4VisionOutput {
    const c = this.config, D = c.hiddenSize, k = c.poolingKernelSize;
    const cells = input.maxPatches / (k * k);
    let maxX = 0;
    for (let n = 0; n < N; n++) maxX = Math.max(maxX, input.positionIds[2 * n]);
    const gridW = Math.floor((maxX + 1) / k);
    const pooled = new Float32Array(cells * D);
    const mask = new Uint8Array(cells);
    const invK2 = Math.fround(1 / (k * k));
    for (let n = 0; n < N; n++) {
      const cell = Math.floor(input.positionIds[2 * n] / k) + gridW * Math.floor(input.positionIds[2 * n + 1] / k);
      if (cell >= cells) throw new RangeError(`vision: patch ${n} pools into cell ${cell} of ${cells}`);
      mask[cell] = 1;
      for (let d = 0; d < D; d++) pooled[cell * D + d] += Math.fround(x[n * D + d] * invK2);
    }
    const root = Math.fround(Math.sqrt(D));
    for (let i = 0; i < pooled.length; i++) pooled[i] = Math.fround(pooled[i] * root);
    trace?.('vision.pooled', pooled, [cells, D]);
    let valid = 0;
    for (let i = 0; i < cells; i++) valid += mask[i];
    const softTokens = new Float32Array(valid * D);
    for (let i = 0, j = 0; i < cells; i++) if (mask[i]) softTokens.set(pooled.subarray(i * D, (i + 1) * D), D * j++);
    trace?.('vision.last_hidden_state', softTokens, [valid, D]);
    return { softTokens, numSoftTokens: valid, pooled, poolerMask: mask };
  }

  release(): void {
    this.kernels.release(this.inputProj);
    for (const l of this.layers) for (const p of [l.q_proj, l.k_proj, l.v_proj, l.o_proj, l.gate_proj, l.up_proj, l.down_proj]) p.release();
  }
}

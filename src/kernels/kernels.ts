/**
 * The one small interface between model logic and compute kernels.
 *
 * The model (src/model, src/encoders) only ever calls these functions for its heavy math;
 * `TsKernels` (plain TypeScript, float32) is the readable reference and `WasmKernels`
 * (AssemblyScript, WASM SIMD) the fast path. Tests hold the second to the first.
 *
 * Layouts are row-major. A linear weight follows PyTorch: W is [outDim, inDim], y = x·Wᵀ.
 */

/** How a linear weight is stored inside a kernel backend. */
export type WeightFormat = 'f32' | 'q4' | 'q8';

/** An opaque, backend-owned linear weight. */
export interface LinearWeight {
  readonly outDim: number;
  readonly inDim: number;
  readonly format: WeightFormat;
}

export interface AttentionParams {
  /** Queries [T, numHeads*headDim] (already normed and rotated). */
  q: Float32Array;
  /** Keys [S, numKvHeads*headDim] and values, the rows of the KV cache visible to this call. */
  k: Float32Array;
  v: Float32Array;
  T: number;
  S: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Absolute position of query row 0 and of key row 0. */
  qPos0: number;
  kPos0: number;
  /** Sliding window W (a query at p sees keys in (p-W, p]); 0 for full causal attention. */
  window: number;
  /** Multiplier on q·k (Gemma 3n uses 1.0: q_norm/k_norm replace 1/sqrt(d)). */
  scale: number;
  /** Output [T, numHeads*headDim]. */
  out: Float32Array;
}

import type { Q4Matrix } from './q4.js';
import type { Q8Matrix } from './q8.js';
import type { DepthwiseConv2dParams, MultiQueryAttentionParams, RmsNormActParams } from './tower_ops.js';

/**
 * The decoder's row-wise float math (RMSNorm, the AltUp router, mix and correction, the residual
 * adds, the sparse layers' top-k GELU): the TS functions of src/kernels/norm.ts, altup.ts, residual.ts, sparse.ts and rope.ts (`tsRowOps`), or a backend's
 * implementation that equals them BIT FOR BIT (WasmKernels: assembly/norm.ts, assembly/altup.ts),
 * so the backend changes only the speed. Weights (`weight`, `normW`, `routerW`) are model
 * constants: a backend may keep its own copy of one, keyed by the array.
 */
export interface RowOps {
  rmsNorm(x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number, out?: Float32Array): Float32Array;
  altupRouterDots(x: Float32Array, normW: Float32Array, routerW: Float32Array, T: number, H: number, A: number, eps: number, scale: number, normed: Float32Array, dots: Float64Array): void;
  altupMix4(C: Float32Array, x: Float32Array, out: Float32Array, T: number, H: number): void;
  altupCorrectStreams(pred: Float32Array, activated: Float32Array, active: number, coef: Float32Array, out: Float32Array, T: number, H: number, A: number): void;
  /** The residual adds and per-channel scales of src/kernels/residual.ts. */
  addRepeated(x: Float32Array, y: Float32Array, n: number, times?: number): void;
  sum3Scaled(a: Float32Array, b: Float32Array, c: Float32Array, s: number, out: Float32Array, n: number): void;
  scaleColumns(x: Float32Array, w: Float32Array, out: Float32Array, rows: number, dim: number): Float32Array;
  /** The sparse FFN layers' gaussian top-k and gated GELU (src/kernels/sparse.ts); returns the kept count. */
  gaussianGeluMul(gate: Float32Array, up: Float32Array, rows: number, dim: number, stdMultiplier: number): number;
  /** RoPE of x [T, numHeads·headDim] in place with cos/sin tables [T, headDim/2] (src/kernels/rope.ts). */
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, numHeads: number, headDim: number): void;
}

export interface Kernels {
  readonly name: string;
  /**
   * Builds a backend weight from a row-major [outDim, inDim] float32 matrix.
   * With format 'q4' it is quantized to group-wise int4 (see src/kernels/q4.ts). A Q4Matrix
   * (e.g. from Q4Matrix.fromBytes of a saved model) is taken as is, without re-quantizing.
   * With format 'q8' (the towers) it is quantized to per-channel int8 (src/kernels/q8.ts); a
   * Q8Matrix is likewise taken as is.
   */
  createLinear(w: Float32Array | Q4Matrix | Q8Matrix, outDim: number, inDim: number, format?: WeightFormat): LinearWeight;
  /** y[t, o] = Σ_i x[t, i] · W[o, i] for t < T. x is [T, inDim], y is [T, outDim]. */
  linear(w: LinearWeight, x: Float32Array, T: number, y: Float32Array): void;
  /**
   * Several weights with the same inDim applied to one input, ys[i] = x · W_iᵀ (q/k/v, gate/up):
   * the same as calling linear for each, but a backend may do it as one job (WasmKernels
   * quantizes x once and streams all the weights in one dispatch).
   */
  linearMany(ws: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]): void;
  /**
   * Optional: one token through some rows of W only: y[o] = (x · Wᵀ)[o] for the rows of the 4-row
   * blocks [ranges[2i], ranges[2i + 1]), i < nRanges (the up_proj rows a sparse FFN layer keeps);
   * other values of y are left as they are. Each listed row equals `linear`'s bit for bit.
   */
  linearRows?(w: LinearWeight, x: Float32Array, y: Float32Array, ranges: Int32Array, nRanges: number): void;
  /** a[i] = gelu_tanh(a[i]) · b[i] for i < n (the gated activations of the MLP and PLE gate). */
  geluMul(a: Float32Array, b: Float32Array, n: number): void;
  /** x[i] = cap · tanh(x[i] / cap) for i < n (the final logit soft-cap). */
  softcap(x: Float32Array, n: number, cap: number): void;
  /** Optional: the decoder's row-wise float math, bit-identical to `tsRowOps` (absent: the model runs those). */
  readonly rowOps?: RowOps;
  /** Causal (optionally sliding-window) multi-head attention with GQA; softmax in float32. */
  attention(p: AttentionParams): void;
  /** Frees a weight's backend memory. */
  release(w: LinearWeight): void;
  /**
   * Optional: n zeros in memory the backend's kernels read in place (WasmKernels: inside WASM
   * memory), for buffers passed on every call such as the KV cache. Free with freeF32.
   */
  allocF32?(n: number): Float32Array;
  freeF32?(a: Float32Array): void;
  /**
   * Optional: room for a q4 weight [outDim, inDim] in backend memory, for a caller that writes
   * it there directly in the layout the int4 kernels read (WasmKernels: [blocks][groups][64 code
   * bytes, then the 4 rows' f32 scales], assembly/matmul_q4.ts) — a packed checkpoint then loads
   * with no intermediate copy. `view()` is the region (take it again after any other call on the
   * backend); `commit()` makes it a weight, `cancel()` frees it.
   */
  reserveQ4?(outDim: number, inDim: number): Q4Reservation;
  /**
   * Optional: the towers' operations besides GEMMs (src/kernels/tower_ops.ts has their
   * definitions and the plain-TS versions callers fall back to; WasmKernels runs them in WASM).
   */
  depthwiseConv2d?(p: DepthwiseConv2dParams): void;
  rmsNormAct?(p: RmsNormActParams): void;
  multiQueryAttention?(p: MultiQueryAttentionParams): void;
}

export interface Q4Reservation {
  /** Whether a view stays valid while other calls grow the backend's memory (shared WASM memory). */
  readonly stable: boolean;
  view(): Uint8Array;
  commit(): LinearWeight;
  cancel(): void;
  /**
   * Optional: widens a packed v2.1 `.q4` body (blob version 3) that was read into view() at byte
   * `srcAt` into this weight's layout, in place: `blocks` 4-row blocks of `groups` groups, scale
   * codes looked up in `table` (256 f32). Returns −1, or the first block whose f32 bases are not
   * finite and ≥ 0 (that block and later ones are left as read, so the caller can name the row).
   * The same result as checkpoint/q4_compact.ts expandQ4Blocks, bit for bit, without a JS pass.
   */
  expandCompact?(srcAt: number, blocks: number, groups: number, table: Float32Array): number;
}

/**
 * Small building blocks shared by the audio modules: a bias-free linear layer loaded from the
 * checkpoint into a kernel backend, RMSNorm weights, and the element-wise helpers the conformer
 * uses (clamp, SiLU, sigmoid). Activations are float32 row-major [T, dim].
 */
import type { Kernels, LinearWeight } from '../../kernels/kernels.js';
import { loadTowerLinear, type TowerWeights } from '../tower_weights.js';

/** An `nn.Linear(in, out, bias=False)`: y = x·Wᵀ, W stored [out, in] as in PyTorch. */
export class Linear {
  constructor(private readonly kernels: Kernels, readonly weight: LinearWeight) {}

  /** From checkpoint tensor `name` [out, in]: packed int4, or quantized on load per tower_weights.ts when the reader asks. */
  static async load(ckpt: TowerWeights, kernels: Kernels, name: string, outDim: number, inDim: number): Promise<Linear> {
    return new Linear(kernels, await loadTowerLinear(ckpt, name, [outDim, inDim], kernels));
  }

  get inDim(): number { return this.weight.inDim; }
  get outDim(): number { return this.weight.outDim; }

  /** x [T, in] → y [T, out] (a fresh array unless `y` is given). */
  forward(x: Float32Array, T: number, y: Float32Array = new Float32Array(T * this.outDim)): Float32Array {
    this.kernels.linear(this.weight, x, T, y);
    return y;
  }

  release(): void {
    this.kernels.release(this.weight);
  }
}

/** Reads a 1-D parameter (norm weight, per_dim_scale) checking its length. */
export function loadVector(ckpt: TowerWeights, name: string, dim: number): Promise<Float32Array> {
  return ckpt.readF32(name, [dim]);
}

/** torch.clamp(x, -c, c) in place: the `gradient_clipping` sites of the conformer. */
export function clampInPlace(x: Float32Array, c: number, n = x.length): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    x[i] = v > c ? c : v < -c ? -c : v;
  }
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** SiLU (swish) x·σ(x), in place. */
export function siluInPlace(x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) x[i] = x[i] * sigmoid(x[i]);
}

/** PyTorch softplus(x) = log(1 + eˣ), linear above 20. */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

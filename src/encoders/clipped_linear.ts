/**
 * Gemma 4's clippable linear [modeling_gemma4.py, Gemma4ClippableLinear], used by every
 * q/k/v/o/gate/up/down projection of the E2B/E4B vision and audio towers:
 *
 *   y = clamp(clamp(x, input_min, input_max) · Wᵀ, output_min, output_max)
 *
 * The four bounds are 0-d tensors beside `NAME.linear.weight` (buffers: easy to miss when only
 * parameters are loaded). Without `use_clipped_linears` it is a plain bias-free linear.
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { Kernels, LinearWeight } from '../kernels/kernels.js';
import { loadTowerLinear } from './tower_weights.js';

export class ClippedLinear {
  private constructor(
    private readonly kernels: Kernels,
    readonly weight: LinearWeight,
    /** [input_min, input_max, output_min, output_max], or null when not clipped. */
    readonly bounds: Float32Array | null,
  ) {}

  static async load(store: TensorStore, kernels: Kernels, name: string, outDim: number, inDim: number, clipped: boolean): Promise<ClippedLinear> {
    // f32 as stored, or the packed int8 `.q8` a quantized folder holds (tower_weights.ts)
    const weight = await loadTowerLinear(store, `${name}.linear.weight`, [outDim, inDim], kernels);
    let bounds: Float32Array | null = null;
    if (clipped) {
      bounds = new Float32Array(4);
      const keys = ['input_min', 'input_max', 'output_min', 'output_max'];
      for (let i = 0; i < 4; i++) {
        const v = await store.readF32(`${name}.${keys[i]}`, []);
        if (Number.isNaN(v[0])) throw new RangeError(`${store.location}: ${name}.${keys[i]} is NaN`);
        bounds[i] = v[0];
      }
    }
    return new ClippedLinear(kernels, weight, bounds);
  }

  get outDim(): number { return this.weight.outDim; }

  /** x [T, in] → y [T, out]. `x` is clamped in place. */
  forward(x: Float32Array, T: number, y: Float32Array = new Float32Array(T * this.weight.outDim)): Float32Array {
    const b = this.bounds;
    const nIn = T * this.weight.inDim, nOut = T * this.weight.outDim;
    if (b) clamp(x, nIn, b[0], b[1]);
    this.kernels.linear(this.weight, x, T, y);
    if (b) clamp(y, nOut, b[2], b[3]);
    return y;
  }

  release(): void {
    this.kernels.release(this.weight);
  }
}

function clamp(x: Float32Array, n: number, lo: number, hi: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    x[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

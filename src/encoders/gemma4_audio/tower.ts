/**
 * Gemma 4's audio tower, `model.audio_tower` [modeling_gemma4.py, Gemma4AudioModel]:
 * subsampler (×4 in time) → conformer layers → output_proj (with bias). One soft token per valid
 * 40 ms step; padded steps are not zeroed (they never become tokens).
 */
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import type { Kernels, LinearWeight } from '../../kernels/kernels.js';
import type { Tracer } from '../../model/trace.js';
import type { Gemma4AudioConfig } from './config.js';
import { Gemma4ConformerLayer } from './conformer.js';
import { Gemma4AudioSubsampler } from './subsampler.js';
import { loadTowerLinear } from '../tower_weights.js';

export interface Gemma4AudioOutput {
  /** [T4, output_proj_dims] for every step. */
  lastHiddenState: Float32Array;
  /** [T4], 1 = valid. */
  mask: Uint8Array;
  steps: number;
  /** The valid steps' rows, in order: what becomes the clip's soft tokens. */
  validRows: Float32Array;
  numValid: number;
}

export class Gemma4AudioTower {
  private constructor(
    readonly config: Gemma4AudioConfig,
    private readonly kernels: Kernels,
    private readonly subsampler: Gemma4AudioSubsampler,
    private readonly layers: Gemma4ConformerLayer[],
    private readonly outputProj: LinearWeight,
    private readonly outputBias: Float32Array,
  ) {}

  static async load(store: TensorStore, kernels: Kernels, c: Gemma4AudioConfig, prefix = 'model.audio_tower'): Promise<Gemma4AudioTower> {
    const sub = await Gemma4AudioSubsampler.load(store, kernels, c, `${prefix}.subsample_conv_projection`);
    const layers: Gemma4ConformerLayer[] = [];
    for (let l = 0; l < c.numHiddenLayers; l++) layers.push(await Gemma4ConformerLayer.load(store, kernels, `${prefix}.layers.${l}`, c));
    const w = await loadTowerLinear(store, `${prefix}.output_proj.weight`, [c.outputProjDims, c.hiddenSize], kernels);
    const b = await store.readF32(`${prefix}.output_proj.bias`, [c.outputProjDims]);
    return new Gemma4AudioTower(c, kernels, sub, layers, w, b);
  }

  /** One clip's features [T, 128] and frame mask [T] (1 = valid). */
  encode(features: Float32Array, frameMask: Uint8Array, T: number, trace?: Tracer): Gemma4AudioOutput {
    const c = this.config, H = c.hiddenSize, O = c.outputProjDims, F = 128;
    if (features.length !== T * F) throw new RangeError(`audio: features has ${features.length} values, expected [${T}, ${F}]`);
    if (frameMask.length !== T) throw new RangeError(`audio: mask has ${frameMask.length} entries for ${T} frames`);
    if (T < 4) throw new RangeError(`audio: ${T} frames is too short (at least 4 are needed)`);
    const sub = this.subsampler.forward(features, frameMask, T, F, trace && ((l, x, t, f, ch) => trace(`audio.sscp.layer${l}`, x, [t, f, ch])));
    let x = sub.x;
    const mask = sub.mask, S = sub.T;
    trace?.('audio.sscp.out', x, [S, H]);
    for (let l = 0; l < this.layers.length; l++) {
      x = this.layers[l].forward(x, mask, S, trace, `audio.layers.${l}`);
      trace?.(`audio.layers.${l}`, x, [S, H]);
    }
    const out = new Float32Array(S * O);
    this.kernels.linear(this.outputProj, x, S, out);
    for (let t = 0; t < S; t++) for (let o = 0; o < O; o++) out[t * O + o] += this.outputBias[o];
    let n = 0;
    for (let t = 0; t < S; t++) n += mask[t];
    const valid = new Float32Array(n * O);
    for (let t = 0, j = 0; t < S; t++) if (mask[t]) valid.set(out.subarray(t * O, (t + 1) * O), O * j++);
    return { lastHiddenState: out, mask, steps: S, validRows: valid, numValid: n };
  }

  release(): void {
    this.subsampler.release();
    for (const l of this.layers) l.release();
    this.kernels.release(this.outputProj);
  }
}

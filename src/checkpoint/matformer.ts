/**
 * MatFormer mix-n-match [arXiv:2310.07707; Gemma 3n model card, "MatFormer Lab"].
 *
 * Gemma 3n E4B is trained so that smaller models live inside it: each layer's FFN is nested
 * (the first k hidden units form a valid narrower FFN: gate/up rows [0, k), down columns
 * [0, k)), and some layers can be skipped. Choosing a width per layer and a set of layers to
 * skip yields a smaller model from the same weights; E2B is exactly E4B with FFN 8192 and
 * layers 20-24 skipped. This module plans such a slice and presents it as a TensorStore,
 * so the loader can slice on the fly and `gemma3n slice` can write a standalone checkpoint.
 */
import type { ByteSource } from '../io/byte_source.js';
import type { TensorStore } from './checkpoint.js';
import { firstKvSharedLayer, kvSourceLayers, parseTextConfig } from './config.js';
import { DTYPE_BYTES, toFloat32 } from './dtype.js';
import { CheckpointError, numel, type TensorInfo } from './safetensors.js';

export interface SliceSpec {
  /** Indices (in the original model) of the layers to drop. */
  layersToSkip: number[];
  /** FFN width of every KEPT layer, in order (one entry per kept layer). */
  ffnHiddenDims: number[];
}

/** 8 × 2048 where `wide` says so, else 4 × 2048: the published configs use these two widths. */
function widths(n: number, wide: (i: number) => boolean): number[] {
  return Array.from({ length: n }, (_, i) => 2048 * (wide(i) ? 8 : 4));
}
const inRanges =
  (...r: [number, number][]) =>
  (i: number) =>
    r.some(([a, b]) => i >= a && i <= b);
const E2B_SKIP = [20, 21, 22, 23, 24];

/**
 * The slicing configurations Google published for Gemma 3n E4B (MatFormer Lab's
 * gemma3n slicing table): name → layers skipped and FFN width per kept layer.
 */
export const MATFORMER_PRESETS: Readonly<Record<string, { effectiveParamsB: number; spec: SliceSpec }>> = {
  E4B: { effectiveParamsB: 3.98, spec: { layersToSkip: [], ffnHiddenDims: widths(35, () => true) } },
  E2B: { effectiveParamsB: 1.91, spec: { layersToSkip: E2B_SKIP, ffnHiddenDims: widths(30, () => false) } },
  'E1.96B': { effectiveParamsB: 1.96, spec: { layersToSkip: E2B_SKIP, ffnHiddenDims: widths(30, (i) => i === 4) } },
  'E2.54B': { effectiveParamsB: 2.54, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 4], [20, 24])) } },
  'E2.69B': { effectiveParamsB: 2.69, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 4], [9, 9], [14, 14], [19, 24])) } },
  'E2.98B': { effectiveParamsB: 2.98, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([15, 24], [30, 34])) } },
  'E3.18B': { effectiveParamsB: 3.18, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 4], [9, 24], [29, 29], [34, 34])) } },
  'E3.39B': { effectiveParamsB: 3.39, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 4], [9, 29], [34, 34])) } },
  'E3.59B': { effectiveParamsB: 3.59, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 29], [34, 34])) } },
  'E3.79B': { effectiveParamsB: 3.79, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([4, 34])) } },
  'E2.49B-block': { effectiveParamsB: 2.49, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([20, 24])) } },
  'E2.73B-block': { effectiveParamsB: 2.73, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([15, 24])) } },
  'E2.98B-block': { effectiveParamsB: 2.98, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([10, 24])) } },
  'E3.24B-block': { effectiveParamsB: 3.24, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([10, 29])) } },
  'E3.49B-block': { effectiveParamsB: 3.49, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([5, 29])) } },
  'E3.74B-block': { effectiveParamsB: 3.74, spec: { layersToSkip: [], ffnHiddenDims: widths(35, inRanges([5, 34])) } },
};

/** How one tensor of the sliced model is cut from the original. */
interface TensorSlice {
  source: string;
  shape: number[];
  /** Rows kept: [start, end) ranges of the original first dimension. */
  rows?: [number, number][];
  /** Columns kept (2-D tensors): [start, end) ranges of the original second dimension. */
  cols?: [number, number][];
}

type Json = Record<string, unknown>;

/** The config.json of the sliced model (full or text-only config). */
export function slicedConfig(configJson: Json, spec: SliceSpec): Json {
  const full = configJson.model_type === 'gemma3n';
  const text = (full ? configJson.text_config : configJson) as Json;
  const c = parseTextConfig(text, 'config.json');
  const L = c.numHiddenLayers;
  const skip = new Set(spec.layersToSkip);
  for (const l of skip) if (!Number.isInteger(l) || l < 0 || l >= L) throw new CheckpointError(`slice: layer to skip ${l} is outside [0, ${L})`);
  const kept = [...Array(L).keys()].filter((l) => !skip.has(l));
  if (kept.length === 0) throw new CheckpointError('slice: every layer would be skipped');
  if (spec.ffnHiddenDims.length !== kept.length)
    throw new CheckpointError(`slice: ${spec.ffnHiddenDims.length} FFN widths given for ${kept.length} kept layers`);
  kept.forEach((l, i) => {
    const w = spec.ffnHiddenDims[i];
    if (!Number.isInteger(w) || w <= 0 || w > c.intermediateSize[l])
      throw new CheckpointError(
        `slice: FFN width ${w} for layer ${l} must be an integer in [1, ${c.intermediateSize[l]}] (MatFormer FFNs are nested: a slice can only narrow)`,
      );
  });
  const firstShared = firstKvSharedLayer(c);
  const newText: Json = {
    ...text,
    num_hidden_layers: kept.length,
    intermediate_size: [...spec.ffnHiddenDims],
    layer_types: kept.map((l) => c.layerTypes[l]),
    activation_sparsity_pattern: kept.map((l) => c.activationSparsityPattern[l]),
    num_kv_shared_layers: kept.filter((l) => l >= firstShared).length,
  };
  const parsed = parseTextConfig(newText, 'sliced config');
  kvSourceLayers(parsed); // a shared layer must still find a producer of its type
  return full ? { ...configJson, text_config: newText } : newText;
}

function planTensors(names: readonly string[], configJson: Json, spec: SliceSpec, shapeOf: (n: string) => number[]): Map<string, TensorSlice> {
  const full = configJson.model_type === 'gemma3n';
  const c = parseTextConfig((full ? configJson.text_config : configJson) as Json, 'config.json');
  const P = c.hiddenSizePerLayerInput;
  const skip = new Set(spec.layersToSkip);
  const kept = [...Array(c.numHiddenLayers).keys()].filter((l) => !skip.has(l));
  const newIndex = new Map(kept.map((l, i) => [l, i]));
  const pleRanges = kept.map((l) => [l * P, (l + 1) * P] as [number, number]);
  const plan = new Map<string, TensorSlice>();
  for (const name of names) {
    const shape = shapeOf(name);
    const m = /^(.*\blayers\.)(\d+)\.(.*)$/.exec(name);
    const isText = !name.includes('audio_tower') && !name.includes('vision_tower');
    if (m && isText) {
      const old = Number(m[2]);
      const idx = newIndex.get(old);
      if (idx === undefined) continue; // a skipped layer
      const I = spec.ffnHiddenDims[idx];
      const target = `${m[1]}${idx}.${m[3]}`;
      if (m[3] === 'mlp.gate_proj.weight' || m[3] === 'mlp.up_proj.weight') plan.set(target, { source: name, shape: [I, shape[1]], rows: [[0, I]] });
      else if (m[3] === 'mlp.down_proj.weight') plan.set(target, { source: name, shape: [shape[0], I], cols: [[0, I]] });
      else plan.set(target, { source: name, shape });
    } else if (isText && name.endsWith('embed_tokens_per_layer.weight')) {
      plan.set(name, { source: name, shape: [shape[0], kept.length * P], cols: pleRanges });
    } else if (isText && name.endsWith('per_layer_model_projection.weight')) {
      plan.set(name, { source: name, shape: [kept.length * P, shape[1]], rows: pleRanges });
    } else {
      plan.set(name, { source: name, shape });
    }
  }
  return plan;
}

/** A checkpoint seen through a MatFormer slice: renamed layers, narrowed FFNs, fewer PLE columns. */
export class SlicedStore implements TensorStore {
  private constructor(
    private readonly base: TensorStore,
    private readonly plan: Map<string, TensorSlice>,
    private readonly infos: Map<string, TensorInfo & { file: string }>,
  ) {}

  static async create(base: TensorStore, configJson: Json, spec: SliceSpec): Promise<SlicedStore> {
    const infos = new Map<string, TensorInfo & { file: string }>();
    for (const n of base.names()) infos.set(n, await base.info(n));
    slicedConfig(configJson, spec); // validates the spec against the config
    const plan = planTensors(base.names(), configJson, spec, (n) => [...infos.get(n)!.shape]);
    const out = new Map<string, TensorInfo & { file: string }>();
    for (const [name, s] of plan) {
      const src = infos.get(s.source)!;
      out.set(name, { ...src, name, shape: s.shape, byteLength: numel(s.shape) * DTYPE_BYTES[src.dtype] });
    }
    return new SlicedStore(base, plan, out);
  }

  get location(): string {
    return `${this.base.location} (MatFormer slice)`;
  }
  get file(): string {
    return this.base.file;
  }
  has(name: string): boolean {
    return this.plan.has(name);
  }
  names(): string[] {
    return [...this.plan.keys()];
  }

  async info(name: string): Promise<TensorInfo & { file: string }> {
    const i = this.infos.get(name);
    if (!i) throw new CheckpointError(`${this.location}: missing tensor '${name}'`);
    return i;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const s = this.plan.get(name);
    if (!s) throw new CheckpointError(`${this.location}: missing tensor '${name}'`);
    const raw = await this.base.readBytes(s.source);
    if (!s.rows && !s.cols) return raw;
    const src = await this.base.info(s.source);
    const e = DTYPE_BYTES[src.dtype];
    const srcCols = src.shape[1],
      rowBytes = srcCols * e;
    const rows = s.rows ?? [[0, src.shape[0]]];
    const cols = s.cols ?? [[0, srcCols]];
    const out = new Uint8Array(numel(s.shape) * e);
    let o = 0;
    for (const [r0, r1] of rows) {
      for (let r = r0; r < r1; r++) {
        for (const [c0, c1] of cols) {
          out.set(raw.subarray(r * rowBytes + c0 * e, r * rowBytes + c1 * e), o);
          o += (c1 - c0) * e;
        }
      }
    }
    return out;
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const info = await this.info(name);
    if (expectedShape && (info.shape.length !== expectedShape.length || info.shape.some((d, i) => d !== expectedShape[i]))) {
      throw new CheckpointError(`${this.location}: tensor '${name}' has shape [${info.shape.join(', ')}] but the config implies [${expectedShape.join(', ')}]`);
    }
    return toFloat32(await this.readBytes(name), info.dtype, numel(info.shape));
  }

  async sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }> {
    const s = this.plan.get(name);
    if (s && !s.rows && !s.cols)
      return this.base.sourceOf(s.source).then(({ source }) => this.info(name).then((info) => ({ info: { ...info, offset: info.offset }, source })));
    throw new CheckpointError(
      `${this.location}: tensor '${name}' is cut by the slice and cannot be streamed in place; write the slice with \`gemma3n slice\` first`,
    );
  }

  close(): Promise<void> {
    return this.base.close();
  }
}

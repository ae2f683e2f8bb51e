/**
 * How the audio and vision towers (and their embedders) store and load their large weights.
 *
 * Every tower matrix product goes through `kernels.linear`: the audio conformer's linears, the
 * vision 1×1 convs, the vision full k×k convs (lowered to im2col patches, weight reordered to
 * [O, kh·kw·I]) and the embedders' projections. Each belongs to a *family* (below) with a
 * storage format chosen by measurement (README "Tower accuracy", bench/tower_accuracy.ts):
 *
 *   'q4'  group-wise int4 (src/kernels/q4.ts: groups of 32 along the input, one scale per group
 *         and row, int8 activations per group), run by the int4 GEMM kernels without ever
 *         widening the matrix to f32;
 *   'q8'  per-channel int8 (src/kernels/q8.ts: one scale per output row, float32 activations),
 *         run by the int8 tower GEMM (assembly/tower_q8.ts), which dequantizes 16 rows at a time;
 *   'f32' kept as stored (small tensors, depthwise taps, norms: their bytes do not matter).
 *
 * A packed checkpoint (`gemma3n quantize`, docs/packed-format.md) stores a 'q4' / 'q8' tensor
 * `NAME` as the U8 tensor `NAME.q4` / `NAME.q8` holding `Q4Matrix.toBytes()` /
 * `Q8Matrix.toBytes()` of the matrix *as the engine multiplies it* (a full conv's [O, I, kh, kw] reordered to [O, kh, kw, I] first), so loading
 * it is a copy into kernel memory. Unpacked checkpoints load in f32, or quantize per family on
 * load when the reader says `linearFormat: 'q4'` (`--q4`; one tensor at a time).
 */
import type { Kernels, LinearWeight } from '../kernels/kernels.js';
import { Q4Matrix } from '../kernels/q4.js';
import { Q8Matrix, Q8_SCALE_F16, Q8_SCALE_F32, scalesFitF16 } from '../kernels/q8.js';
import { CheckpointError } from '../checkpoint/safetensors.js';
import { Q4_SUFFIX, readPackedQ4 } from '../checkpoint/packed_q4.js';
import type { PlannedTensor } from '../checkpoint/planned_tensor.js';
import { BLOB_HEADER, q4Header } from '../checkpoint/packed_format.js';
import { q4CompactBodyBytes, quantizeQ4Blocks } from '../checkpoint/q4_compact.js';

export type TowerFormat = 'f32' | 'q4' | 'q8';

/** The part of a checkpoint the towers read (a Checkpoint satisfies it). */
export interface TowerWeights {
  readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array>;
  has?(name: string): boolean;
  readBytes?(name: string): Promise<Uint8Array>;
  /** Where the tensors come from, for error messages. */
  readonly file?: string;
  /** Linears stored unpacked load as 'f32' (default), or ('q4') are quantized on load to their family's format. */
  readonly linearFormat?: 'f32' | 'q4';
  /** With linearFormat 'q4': the size below which a tensor stays f32 (default TOWER_MIN_QUANTIZED; tests on tiny models use 0). */
  readonly minQuantized?: number;
  /** With linearFormat 'q4': the family table to use (default TOWER_FAMILIES; the accuracy bench varies it). */
  readonly families?: readonly TowerFamily[];
}

/** How a family's matrix is laid out for `kernels.linear`. */
export type TowerLayout = 'rows' | 'conv_taps_last';

export interface TowerFamily {
  /** Short name used in the accuracy table. */
  readonly family: string;
  /** Matches the tensor name (with or without the checkpoint prefix). */
  readonly pattern: RegExp;
  readonly format: TowerFormat;
  readonly layout: TowerLayout;
}

/**
 * The families, first match wins. Formats are the measured choices (README "Tower accuracy"):
 * a family stays f32 when it is small or when int4 measurably hurts it.
 */
export const TOWER_FAMILIES: readonly TowerFamily[] = [
  // vision (model.vision_tower.timm_model.*): MobileNet-V5
  { family: 'vision.conv_stem', pattern: /conv_stem\.conv\.weight$/, format: 'f32', layout: 'conv_taps_last' },
  { family: 'vision.er_conv_exp', pattern: /blocks\.\d+\.\d+\.conv_exp\.weight$/, format: 'q8', layout: 'conv_taps_last' },
  { family: 'vision.er_conv_pwl', pattern: /blocks\.\d+\.\d+\.conv_pwl\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'vision.msfa_ffn', pattern: /msfa\.ffn\.pw_(exp|proj)\.conv\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'vision.uir_pw_exp', pattern: /blocks\.\d+\.\d+\.pw_exp\.conv\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'vision.uir_pw_proj', pattern: /blocks\.\d+\.\d+\.pw_proj\.conv\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'vision.mqa_qkvo', pattern: /attn\.(query|key|value|output)\.proj\.weight$/, format: 'q8', layout: 'rows' },
  // audio (model.audio_tower.*): USM conformer
  { family: 'audio.sscp_conv', pattern: /subsample_conv_projection\.conv_\d\.conv\.weight$/, format: 'f32', layout: 'rows' },
  { family: 'audio.sscp_proj', pattern: /subsample_conv_projection\.input_proj_linear\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'audio.attn_qkv', pattern: /attention\.attn\.[qkv]_proj\.weight$/, format: 'q8', layout: 'rows' },
  // int4 where the audio soft tokens keep cosine ≥ 0.99 against f32 with all three int4 together
  // (measured 0.9940 / 0.9942 on the golden batches A / B, README "Tower accuracy"): the full
  // folder's 3.3 GB budget needs ~130 MB from the audio tower, and these cost the least cosine
  // per byte (pos_proj alone 0.99997; the end FFW 0.996; lconv's output linear 0.998 on top).
  { family: 'audio.attn_pos', pattern: /relative_position_embedding\.pos_proj\.weight$/, format: 'q4', layout: 'rows' },
  { family: 'audio.attn_post', pattern: /attention\.post\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'audio.ffw_start', pattern: /ffw_layer_start\.ffw_layer_[12]\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'audio.ffw_end', pattern: /ffw_layer_end\.ffw_layer_[12]\.weight$/, format: 'q4', layout: 'rows' },
  { family: 'audio.lconv_start', pattern: /lconv1d\.linear_start\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'audio.lconv_end', pattern: /lconv1d\.linear_end\.weight$/, format: 'q4', layout: 'rows' },
  // Gemma 4 (E2B/E4B): the ViT's and the conformer's clipped linears (`NAME.linear.weight`, their
  // clip bounds stay f32 beside them), the patch projection and the audio output projection
  { family: 'gemma4.vision.linear', pattern: /vision_tower\.encoder\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.linear\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'gemma4.vision.patch_proj', pattern: /vision_tower\.patch_embedder\.input_proj\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'gemma4.audio.linear', pattern: /audio_tower\.layers\.\d+\.(feed_forward[12]\.ffw_layer_[12]|self_attn\.([qkv]_proj|post)|lconv1d\.linear_(start|end))\.linear\.weight$/, format: 'q8', layout: 'rows' },
  { family: 'gemma4.audio.output_proj', pattern: /audio_tower\.output_proj\.weight$/, format: 'q8', layout: 'rows' },
  // embed_vision / embed_audio
  { family: 'embed.projection', pattern: /embed_(vision|audio)\.embedding_projection\.weight$/, format: 'q8', layout: 'rows' },
];

/** Fewer values than this stay f32 whatever the family (their bytes do not matter). */
export const TOWER_MIN_QUANTIZED = 1 << 16;

export function towerFamily(name: string): TowerFamily | null {
  return TOWER_FAMILIES.find((f) => f.pattern.test(name)) ?? null;
}

/** The storage format of tensor `name` with `numel` values. */
export function towerFormat(name: string, numel: number, families: readonly TowerFamily[] = TOWER_FAMILIES, minQuantized = TOWER_MIN_QUANTIZED): TowerFormat {
  const f = families.find((x) => x.pattern.test(name));
  return f && numel >= minQuantized ? f.format : 'f32';
}

/** PyTorch conv weight [O, I, kh, kw] → [O, kh, kw, I], so a channels-last patch row (ky, kx, c) lines up with it. */
export function convTapsLast(w: Float32Array, outChs: number, inChs: number, kk: number): Float32Array {
  if (w.length !== outChs * inChs * kk) throw new Error(`conv weight: ${w.length} values for [${outChs}, ${inChs}, ${kk}]`);
  const r = new Float32Array(w.length);
  for (let o = 0; o < outChs; o++)
    for (let i = 0; i < inChs; i++)
      for (let t = 0; t < kk; t++) r[(o * kk + t) * inChs + i] = w[(o * inChs + i) * kk + t];
  return r;
}

/** The matrix [outDim, inDim] the engine multiplies, from a stored tensor of `shape` (null: not a matrix). */
export function towerMatrix(layout: TowerLayout, shape: readonly number[], w: Float32Array): { outDim: number; inDim: number; data: Float32Array } | null {
  if (shape.length === 2) return { outDim: shape[0], inDim: shape[1], data: w };
  if (shape.length !== 4) return null;
  const [O, I, kh, kw] = shape, kk = kh * kw;
  return { outDim: O, inDim: I * kk, data: layout === 'conv_taps_last' && kk > 1 ? convTapsLast(w, O, I, kk) : w };
}

/**
 * For `gemma3n quantize`: the packed tensor that replaces tower tensor `name` (null: keep it as
 * stored). `read` gives its values as float32 (only called when it is quantized).
 */
export async function packTowerTensor(name: string, shape: readonly number[], read: () => Promise<Float32Array>): Promise<{ name: string; bytes: Uint8Array } | null> {
  const fam = towerFamily(name);
  const numel = shape.reduce((a, b) => a * b, 1);
  const format = fam ? towerFormat(name, numel) : 'f32';
  if (!fam || format === 'f32') return null;
  const m = towerMatrix(fam.layout, shape, await read());
  if (!m) return null;
  if (format === 'q4') return { name: name + Q4_SUFFIX, bytes: Q4Matrix.quantize(m.data, m.outDim, m.inDim).toBytes() };
  const q = Q8Matrix.quantize(m.data, m.outDim, m.inDim);
  return { name: name + Q8_SUFFIX, bytes: q.toBytes(scalesFitF16(q.scales) ? Q8_SCALE_F16 : Q8_SCALE_F32) };
}

/** Suffix of a packed per-channel int8 tower tensor. */
export const Q8_SUFFIX = '.q8';

/** Bytes of a `.q8` blob with f32 scales (what `planTowerTensor` writes: 4 bytes per row of ≥ 1536 values). */
export const q8BlobBytes = (outDim: number, inDim: number): number => 32 + outDim * inDim + outDim * 4;

/**
 * For `gemma3n quantize` (src/checkpoint/pack_v2.ts `towerTensor`): the packed `NAME.q8` (int8
 * families) or `NAME.q4` (int4 families, the text linears' blob) that replaces tower tensor `name`, quantized when the writer asks for its bytes (one tensor in
 * memory at a time), or null to copy it as stored. int8 blobs keep f32 scales (exact; 0.26 % of
 * the bytes at most).
 */
export function planTowerTensor(name: string, info: { dtype: string; shape: readonly number[] }, store: { readF32(name: string): Promise<Float32Array> }, minQuantized = TOWER_MIN_QUANTIZED): PlannedTensor | null {
  const fam = towerFamily(name);
  const numel = info.shape.reduce((a, b) => a * b, 1);
  const format = fam ? towerFormat(name, numel, TOWER_FAMILIES, minQuantized) : 'f32';
  if (!fam || !['F32', 'BF16', 'F16'].includes(info.dtype) || format === 'f32') return null;
  if (info.shape.length !== 2 && info.shape.length !== 4) return null;
  const outDim = info.shape[0], inDim = numel / outDim;
  if (format === 'q4') { // the text linears' blob (packed v2.1 .q4, version 3)
    return {
      name: name + Q4_SUFFIX, dtype: 'U8', shape: [BLOB_HEADER + q4CompactBodyBytes(outDim, inDim)],
      async write(sink) {
        const m = towerMatrix(fam.layout, info.shape, await store.readF32(name))!;
        await sink(0, q4Header(outDim, inDim, 'u8log'));
        await sink(BLOB_HEADER, quantizeQ4Blocks(m.data, outDim, inDim, `tensor '${name}'`));
      },
    };
  }
  return {
    name: name + Q8_SUFFIX, dtype: 'U8', shape: [q8BlobBytes(outDim, inDim)],
    async write(sink) {
      const m = towerMatrix(fam.layout, info.shape, await store.readF32(name))!;
      await sink(0, Q8Matrix.quantize(m.data, m.outDim, m.inDim).toBytes(Q8_SCALE_F32));
    },
  };
}

/** Checks a packed tower matrix read from disk: shape as the model expects, finite scales. */
function checkPacked<Q extends Q4Matrix | Q8Matrix>(q: Q, where: string, outDim: number, inDim: number): Q {
  if (q.outDim !== outDim || q.inDim !== inDim) throw new CheckpointError(`${where} is [${q.outDim}, ${q.inDim}] but the model expects [${outDim}, ${inDim}]`);
  for (let i = 0; i < q.scales.length; i++) {
    if (!Number.isFinite(q.scales[i])) throw new CheckpointError(`${where}: scale ${i} is ${q.scales[i]} (not finite)`);
  }
  return q;
}

/**
 * Loads the tower matrix `name` (stored shape `shape`, multiplied as [outDim, inDim] in
 * `layout`) into the kernels: the packed `NAME.q4` / `NAME.q8` when the checkpoint has it (already
 * in that layout), else the stored values (in the family's format when the reader quantizes on load).
 */
export async function loadTowerLinear(r: TowerWeights, name: string, shape: readonly number[], kernels: Kernels, layout: TowerLayout = 'rows'): Promise<LinearWeight> {
  const numel = shape.reduce((a, b) => a * b, 1);
  const dims = () => (shape.length === 4 ? { outDim: shape[0], inDim: numel / shape[0] } : { outDim: shape[0], inDim: shape[1] });
  const where = (packed: string) => `${r.file ?? 'checkpoint'}: tensor '${packed}'`;
  if (r.readBytes && (r.has?.(name + Q4_SUFFIX) ?? false)) {
    const d = dims(), w = where(name + Q4_SUFFIX);
    const q = checkPacked(readPackedQ4(await r.readBytes(name + Q4_SUFFIX), w), w, d.outDim, d.inDim);
    return kernels.createLinear(q, q.outDim, q.inDim);
  }
  if (r.readBytes && (r.has?.(name + Q8_SUFFIX) ?? false)) {
    const d = dims(), w = where(name + Q8_SUFFIX);
    let q: Q8Matrix;
    try {
      q = Q8Matrix.fromBytes(await r.readBytes(name + Q8_SUFFIX));
    } catch (e) {
      throw new CheckpointError(`${w}: not a valid packed int8 tensor (${(e as Error).message})`);
    }
    checkPacked(q, w, d.outDim, d.inDim);
    return kernels.createLinear(q, q.outDim, q.inDim);
  }
  const m = towerMatrix(layout, shape, await r.readF32(name, shape));
  if (!m) throw new Error(`${name}: shape [${shape}] is not a matrix or conv weight`);
  const format = r.linearFormat === 'q4' ? towerFormat(name, numel, r.families, r.minQuantized) : 'f32';
  return kernels.createLinear(m.data, m.outDim, m.inDim, format);
}

/** A reader that quantizes tower linears on load (per family), e.g. for `--q4` on an unpacked checkpoint. */
export function quantizeOnLoad(r: TowerWeights, opts: { minQuantized?: number; families?: readonly TowerFamily[] } = {}): TowerWeights {
  return {
    readF32: (name, shape) => r.readF32(name, shape),
    has: r.has ? (name) => r.has!(name) : undefined,
    readBytes: r.readBytes ? (name) => r.readBytes!(name) : undefined,
    file: r.file,
    linearFormat: 'q4',
    minQuantized: opts.minQuantized,
    families: opts.families,
  };
}

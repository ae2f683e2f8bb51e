/**
 * Plans a packed v2 checkpoint (docs/packed-format.md) from any Gemma 3n or Gemma 4 checkpoint —
 * bf16/f16/f32 as published, a v1 packed folder, or a v2 one — as a list of tensors that produce their bytes
 * on demand, in pieces. Int4 tensors are written in the v2.1 blobs (log-coded u8 scales,
 * src/checkpoint/q4_compact.ts): `.q4` version 3, `.q4r` version 2. Nothing is read until the writer asks, and no tensor is ever whole in
 * memory unless it is small: the two 2-billion-value tables are quantized a few thousand rows
 * at a time, straight from the source file.
 */
import type { TensorStore } from './checkpoint.js';
import { textPrefix } from './checkpoint.js';
import { firstKvSharedLayer, parseModelConfig } from './config.js';
import { isGemma4Config, parseGemma4Config } from './gemma4_config.js';
import { DTYPE_BYTES, toFloat32 } from './dtype.js';
import { Q4_GROUP, Q4_ROWS } from '../kernels/q4.js';
import { BLOB_HEADER, decodeQ4, dequantQ4Row, parseQ4Header, parseQ4RHeader, q4Header, q4rHeader, Q4_SUFFIX, Q4R_SUFFIX } from './packed_format.js';
import { q4BlockBytes, q4CompactBodyBytes, q4MatrixToBlocks, q4rCompactRowBytes, quantizeQ4Blocks, quantizeQ4RowsCompact } from './q4_compact.js';
import { isTextLinear } from './packed_q4.js';
import type { PlannedTensor, TensorSink } from './planned_tensor.js';
import { CheckpointError, numel, type TensorInfo } from './safetensors.js';

export const TOWER_PREFIXES = ['model.audio_tower.', 'model.vision_tower.', 'model.embed_audio.', 'model.embed_vision.'];
export const isTowerTensor = (name: string): boolean => TOWER_PREFIXES.some((p) => name.startsWith(p));

export interface PackV2Options {
  /** Drop the audio/vision towers and their embedders. */
  textOnly?: boolean;
  /** Text linears (names without the text prefix) to copy unquantized. */
  keepF32?: (localName: string) => boolean;
  /**
   * The towers' quantization (the towers' half of issue 13): a plan for a tower tensor, or null
   * to copy it as stored.
   */
  towerTensor?: (name: string, info: TensorInfo & { file: string }, store: TensorStore) => Promise<PlannedTensor | null> | PlannedTensor | null;
  /** Rows per piece for the big tables (default: ~32 MB of f32). */
  chunkValues?: number;
}

export interface PackV2Plan {
  tensors: PlannedTensor[];
  /** Source tensors left out (KV-shared k/v, a v1 folder's extra LM head, towers with textOnly). */
  dropped: string[];
}

/** Rows [r0, r0 + n) of a 2-D float tensor as f32, read by offset from its file when possible. */
async function readRows(store: TensorStore, name: string, info: TensorInfo, r0: number, n: number): Promise<Float32Array> {
  const cols = numel(info.shape) / info.shape[0];
  const bpe = DTYPE_BYTES[info.dtype];
  const { info: at, source } = await store.sourceOf(name);
  return toFloat32(await source.read(at.offset + r0 * cols * bpe, n * cols * bpe), info.dtype, n * cols);
}

const FLOAT = new Set(['F32', 'BF16', 'F16', 'F64']);

/** What packing needs from the text config: the same fields for Gemma 3n and Gemma 4. */
interface PackShape {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numKvSharedLayers: number;
}

function packShape(configText: string, where: string): PackShape {
  let raw: unknown = null;
  try {
    raw = JSON.parse(configText);
  } catch {
    /* parseModelConfig names the error */
  }
  return isGemma4Config(raw) ? parseGemma4Config(configText, where).text : parseModelConfig(configText, where).text;
}

export async function planPackedV2(store: TensorStore, configText: string, opts: PackV2Options = {}): Promise<PackV2Plan> {
  const c = packShape(configText, `${store.location}/config.json`);
  const prefix = textPrefix(store);
  const firstShared = firstKvSharedLayer(c);
  const chunkValues = opts.chunkValues ?? 8 << 20;
  const tensors: PlannedTensor[] = [];
  const dropped: string[] = [];
  const names = store.names();
  const has = new Set(names);

  const sharedKv = /^layers\.(\d+)\.self_attn\.(k_proj|v_proj|k_norm)\.weight$/;
  const where = (info: { file: string }, name: string) => `${info.file}: tensor '${name}'`;

  for (const name of names) {
    const info = await store.info(name);
    if (isTowerTensor(name)) {
      if (opts.textOnly) {
        dropped.push(name);
        continue;
      }
      const plan = await opts.towerTensor?.(name, info, store);
      tensors.push(plan ?? copyTensor(store, name, info));
      continue;
    }
    const local = name.startsWith(prefix) ? name.slice(prefix.length) : null;
    if (local === null) {
      tensors.push(copyTensor(store, name, info));
      continue;
    }
    const base = local.endsWith(Q4_SUFFIX) ? local.slice(0, -Q4_SUFFIX.length) : local.endsWith(Q4R_SUFFIX) ? local.slice(0, -Q4R_SUFFIX.length) : local;
    const m = sharedKv.exec(base);
    if (m && Number(m[1]) >= firstShared) {
      dropped.push(name);
      continue;
    } // never read: those layers use an earlier layer's cache
    if (base === 'lm_head.weight') {
      dropped.push(name);
      continue;
    } // v1's second copy of the tied embedding

    if (base === 'embed_tokens.weight') {
      if (local.endsWith(Q4_SUFFIX)) tensors.push(await repackQ4(store, name, info));
      else tensors.push(packEmbedding(store, name, info, c, chunkValues, where(info, name)));
      continue;
    }
    if (base === 'embed_tokens_per_layer.weight') {
      if (local.endsWith(Q4R_SUFFIX)) tensors.push(await repackRowTable(store, name, info, chunkValues, where(info, name)));
      else tensors.push(packRowTable(store, name, info, chunkValues, where(info, name)));
      continue;
    }
    if (local.endsWith(Q4_SUFFIX)) {
      tensors.push(await repackQ4(store, name, info));
      continue;
    } // a v1/v2 packed linear
    if (isTextLinear(local) && info.shape.length === 2 && FLOAT.has(info.dtype) && !(opts.keepF32?.(local) ?? false)) {
      tensors.push(packLinear(store, name, info, where(info, name)));
      continue;
    }
    tensors.push(copyTensor(store, name, info));
  }
  if (!has.has(prefix + 'embed_tokens.weight') && !has.has(prefix + 'embed_tokens.weight' + Q4_SUFFIX)) {
    throw new CheckpointError(`${store.location}/${store.file}: missing tensor '${prefix}embed_tokens.weight'`);
  }
  return { tensors, dropped };
}

/** A tensor copied as stored, in pieces of ≤ 64 MB. */
function copyTensor(store: TensorStore, name: string, info: TensorInfo): PlannedTensor {
  return {
    name,
    dtype: info.dtype,
    shape: info.shape,
    async write(sink) {
      const piece = 64 << 20;
      if (info.byteLength <= piece) return sink(0, await store.readBytes(name));
      const { info: at, source } = await store.sourceOf(name);
      for (let o = 0; o < info.byteLength; o += piece) await sink(o, await source.read(at.offset + o, Math.min(piece, info.byteLength - o)));
    },
  };
}

/** A float [out, in] linear → `.q4` (blob version 3). */
function packLinear(store: TensorStore, name: string, info: TensorInfo, what: string): PlannedTensor {
  const [out, inp] = info.shape;
  return {
    name: name + Q4_SUFFIX,
    dtype: 'U8',
    shape: [BLOB_HEADER + q4CompactBodyBytes(out, inp)],
    async write(sink) {
      await sink(0, q4Header(out, inp, 'u8log'));
      await sink(BLOB_HEADER, quantizeQ4Blocks(await store.readF32(name), out, inp, what));
    },
  };
}

/** A `.q4` tensor of an older folder: same codes, scales log-coded (q4MatrixToBlocks); version 3: copied. */
async function repackQ4(store: TensorStore, name: string, info: TensorInfo & { file: string }): Promise<PlannedTensor> {
  const what = `${info.file}: tensor '${name}'`;
  const { info: at, source } = await store.sourceOf(name);
  const h = parseQ4Header(await source.read(at.offset, Math.min(BLOB_HEADER, info.byteLength)), info.byteLength, what);
  if (h.version === 3) return copyTensor(store, name, info);
  return {
    name,
    dtype: 'U8',
    shape: [BLOB_HEADER + q4CompactBodyBytes(h.outDim, h.inDim)],
    async write(sink) {
      const q = decodeQ4(await store.readBytes(name), what);
      await sink(0, q4Header(q.outDim, q.inDim, 'u8log'));
      await sink(BLOB_HEADER, q4MatrixToBlocks(q));
    },
  };
}

/** The tied embedding [V, H] → `embed_tokens.weight.q4` (the LM head's int4 matrix), 4·k rows at a time. */
function packEmbedding(store: TensorStore, name: string, info: TensorInfo, c: PackShape, chunkValues: number, what: string): PlannedTensor {
  const [rows, cols] = info.shape;
  if (rows !== c.vocabSize || cols !== c.hiddenSize)
    throw new CheckpointError(`${what} has shape [${rows}, ${cols}] but the config implies [${c.vocabSize}, ${c.hiddenSize}]`);
  const bb = q4BlockBytes(Math.ceil(cols / Q4_GROUP));
  const step = Math.max(Q4_ROWS, Math.floor(chunkValues / cols / Q4_ROWS) * Q4_ROWS);
  return {
    name: name + Q4_SUFFIX,
    dtype: 'U8',
    shape: [BLOB_HEADER + q4CompactBodyBytes(rows, cols)],
    async write(sink: TensorSink) {
      await sink(0, q4Header(rows, cols, 'u8log'));
      for (let r = 0; r < rows; r += step) {
        const n = Math.min(step, rows - r);
        await sink(BLOB_HEADER + (r / Q4_ROWS) * bb, quantizeQ4Blocks(await readRows(store, name, info, r, n), n, cols, what));
      }
    },
  };
}

/** The per-layer embedding table [V, L·P] → `.q4r` version 2 rows, in row chunks. */
function packRowTable(store: TensorStore, name: string, info: TensorInfo, chunkValues: number, what: string): PlannedTensor {
  const [rows, cols] = info.shape;
  const rb = q4rCompactRowBytes(cols);
  const step = Math.max(1, Math.floor(chunkValues / cols));
  return {
    name: name + Q4R_SUFFIX,
    dtype: 'U8',
    shape: [BLOB_HEADER + rows * rb],
    async write(sink) {
      await sink(0, q4rHeader(rows, cols, 'u8log'));
      for (let r = 0; r < rows; r += step) {
        const n = Math.min(step, rows - r);
        await sink(BLOB_HEADER + r * rb, quantizeQ4RowsCompact(await readRows(store, name, info, r, n), n, cols, `${what} rows ${r}..${r + n - 1}`));
      }
    },
  };
}

/** A `.q4r` table of an older folder: rows dequantized and re-packed as version 2, in chunks (version 2: copied). */
async function repackRowTable(
  store: TensorStore,
  name: string,
  info: TensorInfo & { file: string },
  chunkValues: number,
  what: string,
): Promise<PlannedTensor> {
  const { info: at, source } = await store.sourceOf(name);
  const h = parseQ4RHeader(await source.read(at.offset, Math.min(BLOB_HEADER, info.byteLength)), info.byteLength, what);
  if (h.scales === 'u8log') return copyTensor(store, name, info);
  const rb = q4rCompactRowBytes(h.cols);
  const step = Math.max(1, Math.floor(chunkValues / h.cols));
  return {
    name,
    dtype: 'U8',
    shape: [BLOB_HEADER + h.rows * rb],
    async write(sink) {
      await sink(0, q4rHeader(h.rows, h.cols, 'u8log'));
      for (let r = 0; r < h.rows; r += step) {
        const n = Math.min(step, h.rows - r);
        const recs = await source.read(at.offset + BLOB_HEADER + r * h.rowBytes, n * h.rowBytes);
        const w = new Float32Array(n * h.cols);
        for (let i = 0; i < n; i++) dequantQ4Row(recs.subarray(i * h.rowBytes, (i + 1) * h.rowBytes), h, w.subarray(i * h.cols, (i + 1) * h.cols), what, r + i);
        await sink(BLOB_HEADER + r * rb, quantizeQ4RowsCompact(w, n, h.cols, `${what} rows ${r}..${r + n - 1}`));
      }
    },
  };
}

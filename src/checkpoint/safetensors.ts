/**
 * safetensors: 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then raw data.
 * Offsets are relative to the first byte after the header.
 *
 * The reader validates the whole header up front (dtype, shape, sizes, bounds, and that the
 * tensors are packed back to back with no overlap or gap, as the reference library requires) so a bad file fails once with a message naming the file and the tensor,
 * and then reads tensors lazily, one at a time, so a 10 GB shard is never held in memory.
 */
import type { ByteSource } from '../io/byte_source.js';
import { DTYPE_BYTES, isDType, toFloat32, type DType } from './dtype.js';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

/** Error in a checkpoint or config file; the message names the file and the tensor or field. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Headers larger than this are refused: real ones are a few hundred KB. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** A header value for an error message, cut short: a corrupt header can hold anything. */
function brief(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  get name(): string {
    return this.source.name;
  }

  /** Reads and validates the header. Tensor data is not touched. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const file = source.name;
    const fail = (msg: string): never => {
      throw new CheckpointError(`${file}: ${msg}`);
    };
    if (source.size < 8) fail(`truncated: ${source.size} bytes, a safetensors file needs at least an 8-byte header length`);
    const lenBytes = await source.read(0, 8);
    const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is implausibly large (limit ${MAX_HEADER_BYTES})`);
    if (8 + headerLen > source.size) fail(`truncated: header claims ${headerLen} bytes but the file has only ${source.size - 8} after the length`);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(8, headerLen)));
    } catch (e) {
      fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
    const dataStart = 8 + headerLen;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof raw === 'object' && raw !== null) metadata = raw as Record<string, string>;
        continue;
      }
      const t = `tensor '${name}'`;
      if (typeof raw !== 'object' || raw === null) fail(`${t}: entry is not an object`);
      const { dtype, shape, data_offsets: offs } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!isDType(dtype)) fail(`${t}: unknown dtype ${brief(dtype)}`);
      const dt = dtype as DType;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        fail(`${t}: shape ${brief(shape)} is not a list of non-negative integers`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0))
        fail(`${t}: data_offsets ${brief(offs)} is not [begin, end]`);
      const [begin, end] = offs as [number, number];
      const count = numel(shape as number[]);
      const bytes = count * DTYPE_BYTES[dt];
      if (end < begin) fail(`${t}: data_offsets [${begin}, ${end}] end before they begin`);
      if (end > dataSize) fail(`${t}: data_offsets [${begin}, ${end}] point past the end of the data (${dataSize} bytes; file truncated?)`);
      if (end - begin !== bytes) fail(`${t}: ${dt}${JSON.stringify(shape)} needs ${bytes} bytes but data_offsets span ${end - begin}`);
      tensors.set(name, { name, dtype: dt, shape: shape as number[], offset: dataStart + begin, byteLength: bytes });
    }
    // Tensors are packed back to back from offset 0: no shared bytes, no holes. (Element
    // alignment is not required: reads copy into aligned buffers, and the reference writer
    // places 1-byte BOOL tensors between F32 ones.)
    const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1],
        cur = sorted[i];
      if (prev.offset + prev.byteLength > cur.offset) fail(`tensors '${prev.name}' and '${cur.name}' overlap in the data section`);
    }
    let prevEnd = dataStart,
      prevName = '';
    for (const cur of sorted) {
      if (cur.offset > prevEnd)
        fail(
          `tensor '${cur.name}' (${cur.dtype}) is misaligned: its data begins at ${cur.offset - dataStart} but ${prevName ? `'${prevName}' ends` : 'the data section starts'} at ${prevEnd - dataStart} (tensors must be packed back to back)`,
        );
      prevEnd = cur.offset + cur.byteLength;
      prevName = cur.name;
    }
    return new SafetensorsFile(source, tensors, metadata);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new CheckpointError(`${this.name}: missing tensor '${name}'`);
    return t;
  }

  /** Raw bytes of one tensor, as stored. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.source.read(t.offset, t.byteLength);
  }

  /** One tensor widened to float32. */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    return toFloat32(await this.readBytes(name), t.dtype, numel(t.shape));
  }
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** Serialises tensors in the standard layout (header padded with spaces to 8 bytes). */
export function writeSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes)
      throw new Error(`writeSafetensors: '${t.name}' has ${t.data.byteLength} bytes, ${t.dtype}${JSON.stringify(t.shape)} needs ${bytes}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + jsonBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let pos = 8 + jsonBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

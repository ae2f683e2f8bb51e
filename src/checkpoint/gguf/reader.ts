/**
 * GGUF reader [ggml/docs/gguf.md]: "GGUF", version (2 or 3), tensor count and metadata count
 * (u64), the metadata key/value pairs, the tensor infos (name, dims innermost first, ggml type,
 * offset into the data section), then the data section at the next multiple of
 * `general.alignment` (default 32).
 *
 * The header is read through a small sliding window over a ByteSource (never the whole file)
 * and validated up front: every count and length is checked against the bytes that remain
 * before anything is allocated, types must be known, tensors must lie inside the file without
 * overlapping. A bad file fails once with a message naming the file and the key or tensor.
 */
import type { ByteSource } from '../../io/byte_source.js';
import { CheckpointError } from '../safetensors.js';
import { ggmlType, type GgmlType } from './ggml_types.js';

export const GGUF_MAGIC = 0x46554747; // 'GGUF' little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types [gguf.md gguf_metadata_value_type]. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

/** An array value: numbers/bools as a typed array, strings as string[], nested arrays as GgufArray[]. */
export interface GgufArray {
  readonly type: 'array';
  readonly elementType: GgufValueType;
  readonly values: GgufNumericArray | string[] | GgufArray[];
}

export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: ne[0] is the innermost (contiguous) dimension. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly byteLength: number;
  readonly count: number;
}

/** Limits that keep a corrupt header from asking for giant allocations. */
const MAX_COUNT = 1 << 24; // tensors or metadata keys
const MAX_STRING = 64 << 20;
const MAX_ARRAY_DEPTH = 3;
const WINDOW = 1 << 20;

/** Sequential reads over a ByteSource through a window; every read is checked against the file size. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly src: ByteSource,
    private readonly fail: (msg: string) => never,
  ) {}

  get remaining(): number {
    return this.src.size - this.pos;
  }

  async bytes(n: number, what: string): Promise<Uint8Array> {
    if (n > this.remaining) this.fail(`truncated: ${what} needs ${n} bytes at offset ${this.pos} but the file ends at ${this.src.size}`);
    const end = this.pos + n;
    if (this.pos < this.bufStart || end > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, WINDOW), this.src.size - this.pos);
      this.buf = await this.src.read(this.pos, len);
      this.bufStart = this.pos;
    }
    const out = this.buf.subarray(this.pos - this.bufStart, end - this.bufStart);
    this.pos = end;
    return out;
  }

  private async view(n: number, what: string): Promise<DataView> {
    const b = await this.bytes(n, what);
    return new DataView(b.buffer, b.byteOffset, n);
  }
  async u32(what: string): Promise<number> {
    return (await this.view(4, what)).getUint32(0, true);
  }
  async u64(what: string): Promise<number> {
    const v = (await this.view(8, what)).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, beyond any file`);
    return Number(v);
  }
  async string(what: string, max = MAX_STRING): Promise<string> {
    const n = await this.u64(`${what} length`);
    if (n > max || n > this.remaining)
      this.fail(
        `${what}: string length ${n} is ${n > this.remaining ? `past the end of the file (${this.remaining} bytes left)` : `over the limit of ${max}`}`,
      );
    try {
      return UTF8.decode(await this.bytes(n, what));
    } catch {
      return this.fail(`${what}: string is not valid UTF-8`);
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a leading U+FEFF: Gemma has a piece '\ufeff//'

export class GgufFile {
  private constructor(
    readonly source: ByteSource,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    readonly alignment: number,
    readonly dataOffset: number,
  ) {}

  get name(): string {
    return this.source.name;
  }

  static async open(source: ByteSource): Promise<GgufFile> {
    const fail = (msg: string): never => {
      throw new CheckpointError(`${source.name}: ${msg}`);
    };
    const c = new Cursor(source, fail);
    if (source.size < 24) fail(`truncated: ${source.size} bytes, a GGUF header needs at least 24`);
    const magic = await c.u32('magic');
    if (magic !== GGUF_MAGIC)
      fail(
        `not a GGUF file (magic ${JSON.stringify(String.fromCharCode(magic & 255, (magic >> 8) & 255, (magic >> 16) & 255, magic >>> 24))}, expected "GGUF")`,
      );
    const version = await c.u32('version');
    if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported (2 or 3)`);
    const nTensors = await c.u64('tensor count');
    const nKv = await c.u64('metadata count');
    // Each key/value pair takes ≥ 13 bytes (8 length + 1 key byte + 4 type), each tensor info ≥ 28.
    if (nKv > MAX_COUNT || nKv * 13 > c.remaining) fail(`metadata count ${nKv} is impossible for a file of ${source.size} bytes`);
    if (nTensors > MAX_COUNT || nTensors * 28 > c.remaining) fail(`tensor count ${nTensors} is impossible for a file of ${source.size} bytes`);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = await c.string(`metadata key #${i}`, 1 << 16);
      if (metadata.has(key)) fail(`metadata key '${key}' appears twice`);
      const type = await c.u32(`metadata '${key}' type`);
      metadata.set(key, await readValue(c, type, `metadata '${key}'`, 0, fail));
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const a = metadata.get('general.alignment');
    if (a !== undefined) {
      if (typeof a !== 'number' || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0 || a > 1 << 20)
        fail(`metadata 'general.alignment' must be a power of two, got ${String(a)}`);
      alignment = a as number;
    }

    const infos: { name: string; dims: number[]; type: GgmlType; rel: number; count: number; byteLength: number }[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = await c.string(`tensor #${i} name`, 1 << 16);
      const t = `tensor '${name}'`;
      if (names.has(name)) fail(`${t} appears twice`);
      names.add(name);
      const nDims = await c.u32(`${t} dimension count`);
      if (nDims < 1 || nDims > 4) fail(`${t}: ${nDims} dimensions (ggml allows 1 to 4)`);
      const dims: number[] = [];
      let count = 1;
      for (let d = 0; d < nDims; d++) {
        const n = await c.u64(`${t} dimension ${d}`);
        dims.push(n);
        count *= n;
        if (count > source.size * 8) fail(`${t}: shape [${dims.join(', ')}...] is larger than the file could hold`);
      }
      const typeId = await c.u32(`${t} type`);
      const type = ggmlType(typeId) ?? fail(`${t}: unknown ggml type ${typeId}`);
      if (dims[0] % type.blockSize !== 0) fail(`${t}: ${type.name} needs the first dimension to be a multiple of ${type.blockSize}, got ${dims[0]}`);
      const rel = await c.u64(`${t} offset`);
      if (rel % alignment !== 0) fail(`${t}: data offset ${rel} is not a multiple of the alignment ${alignment}`);
      infos.push({ name, dims, type, rel, count, byteLength: (count / type.blockSize) * type.typeSize });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const dataSize = source.size - dataOffset;
    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of infos) {
      if (t.rel + t.byteLength > dataSize)
        fail(
          `tensor '${t.name}': data [${t.rel}, ${t.rel + t.byteLength}) runs past the end of the data section (${Math.max(0, dataSize)} bytes; file truncated?)`,
        );
      tensors.set(t.name, { name: t.name, dims: t.dims, type: t.type, offset: dataOffset + t.rel, byteLength: t.byteLength, count: t.count });
    }
    const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((x, y) => x.offset - y.offset);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i - 1].offset + sorted[i - 1].byteLength > sorted[i].offset)
        fail(`tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap in the data section`);
    }
    return new GgufFile(source, version, metadata, tensors, alignment, dataOffset);
  }

  info(name: string): GgufTensorInfo {
    return (
      this.tensors.get(name) ??
      (() => {
        throw new CheckpointError(`${this.name}: missing tensor '${name}'`);
      })()
    );
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.source.read(t.offset, t.byteLength);
  }

  // Typed metadata accessors: a key of the wrong type is an error naming it.
  private fail(key: string, msg: string): never {
    throw new CheckpointError(`${this.name}: metadata '${key}' ${msg}`);
  }
  has(key: string): boolean {
    return this.metadata.has(key);
  }
  num(key: string, def?: number): number {
    const v = this.metadata.get(key);
    if (v === undefined) {
      if (def !== undefined) return def;
      this.fail(key, 'is missing');
    }
    if (typeof v !== 'number') this.fail(key, `must be a number, got ${describe(v)}`);
    return v as number;
  }
  str(key: string, def?: string): string {
    const v = this.metadata.get(key);
    if (v === undefined) {
      if (def !== undefined) return def;
      this.fail(key, 'is missing');
    }
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${describe(v)}`);
    return v as string;
  }
  bool(key: string, def: boolean): boolean {
    const v = this.metadata.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, `must be a bool, got ${describe(v)}`);
    return v as boolean;
  }
  array(key: string): GgufArray | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v.type !== 'array') this.fail(key, `must be an array, got ${describe(v)}`);
    return v as GgufArray;
  }
  /** A numeric array (or a single number, as llama.cpp's get_key_or_arr accepts) as numbers. */
  numbers(key: string): number[] | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return [v];
    const a = this.array(key)!;
    if (Array.isArray(a.values)) this.fail(key, 'must be a numeric array');
    return Array.from(a.values as ArrayLike<number | bigint>, (x) => Number(x));
  }
  strings(key: string): string[] | undefined {
    const a = this.array(key);
    if (a === undefined) return undefined;
    if (a.elementType !== GgufValueType.STRING) this.fail(key, 'must be an array of strings');
    return a.values as string[];
  }
}

function describe(v: GgufValue): string {
  if (typeof v === 'object') return `an array of ${v.values.length}`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

async function readValue(c: Cursor, type: number, what: string, depth: number, fail: (m: string) => never): Promise<GgufValue> {
  switch (type) {
    case GgufValueType.STRING:
      return c.string(what);
    case GgufValueType.ARRAY: {
      if (depth >= MAX_ARRAY_DEPTH) fail(`${what}: arrays nested more than ${MAX_ARRAY_DEPTH} deep`);
      const et = await c.u32(`${what} element type`);
      const n = await c.u64(`${what} element count`);
      if (et === GgufValueType.STRING || et === GgufValueType.ARRAY) {
        const minBytes = et === GgufValueType.STRING ? 8 : 12;
        if (n * minBytes > c.remaining) fail(`${what}: ${n} elements cannot fit in the ${c.remaining} bytes left`);
        const values: (string | GgufArray)[] = [];
        for (let i = 0; i < n; i++) values.push((await readValue(c, et, `${what}[${i}]`, depth + 1, fail)) as string | GgufArray);
        return { type: 'array', elementType: et as GgufValueType, values: values as string[] | GgufArray[] };
      }
      const size = SCALAR_BYTES[et] ?? fail(`${what}: unknown array element type ${et}`);
      if (n * size > c.remaining) fail(`${what}: ${n} elements of ${size} bytes cannot fit in the ${c.remaining} bytes left`);
      const raw = await c.bytes(n * size, what);
      const copy = new Uint8Array(raw); // aligned, owned
      const b = copy.buffer;
      const values: GgufNumericArray =
        et === 0 || et === 7
          ? copy
          : et === 1
            ? new Int8Array(b)
            : et === 2
              ? new Uint16Array(b)
              : et === 3
                ? new Int16Array(b)
                : et === 4
                  ? new Uint32Array(b)
                  : et === 5
                    ? new Int32Array(b)
                    : et === 6
                      ? new Float32Array(b)
                      : et === 10
                        ? new BigUint64Array(b)
                        : et === 11
                          ? new BigInt64Array(b)
                          : new Float64Array(b);
      if (et === 7) for (const x of copy) if (x > 1) fail(`${what}: bool array holds ${x}`);
      return { type: 'array', elementType: et as GgufValueType, values };
    }
    default: {
      const size = SCALAR_BYTES[type] ?? fail(`${what}: unknown value type ${type}`);
      const b = await c.bytes(size, what);
      const dv = new DataView(b.buffer, b.byteOffset, size);
      switch (type) {
        case 0:
          return dv.getUint8(0);
        case 1:
          return dv.getInt8(0);
        case 2:
          return dv.getUint16(0, true);
        case 3:
          return dv.getInt16(0, true);
        case 4:
          return dv.getUint32(0, true);
        case 5:
          return dv.getInt32(0, true);
        case 6:
          return dv.getFloat32(0, true);
        case 7: {
          const x = dv.getUint8(0);
          if (x > 1) fail(`${what}: bool holds ${x}`);
          return x === 1;
        }
        case 10: {
          const x = dv.getBigUint64(0, true);
          return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
        }
        case 11: {
          const x = dv.getBigInt64(0, true);
          return x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
        }
        default:
          return dv.getFloat64(0, true);
      }
    }
  }
}

/**
 * GGUF writer: the header (metadata, tensor infos) followed by the tensor data, each tensor at
 * a multiple of the alignment [ggml/docs/gguf.md]. Tensors are produced one at a time by
 * callbacks and written straight to a sink, so a multi-GB file is never held in memory.
 */
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType } from './reader.js';
import type { GgmlType } from './ggml_types.js';

/** One metadata entry with its GGUF type. */
export type GgufKV =
  | { key: string; type: 'u32' | 'i32' | 'f32' | 'u64' | 'u8'; value: number }
  | { key: string; type: 'bool'; value: boolean }
  | { key: string; type: 'string'; value: string }
  | { key: string; type: 'f32[]' | 'i32[]' | 'u32[]'; value: ArrayLike<number> }
  | { key: string; type: 'bool[]'; value: readonly boolean[] }
  | { key: string; type: 'string[]'; value: readonly string[] };

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: dims[0] is the innermost (contiguous) dimension. */
  dims: readonly number[];
  type: GgmlType;
  /** Produces the tensor's bytes when it is its turn to be written: whole, or in chunks. */
  data: () => Promise<Uint8Array> | Uint8Array | AsyncIterable<Uint8Array>;
}

export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  str(s: string): void {
    const e = new TextEncoder().encode(s);
    this.u64(e.length);
    this.push(e);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

const TYPE_ID = {
  u8: GgufValueType.UINT8,
  u32: GgufValueType.UINT32,
  i32: GgufValueType.INT32,
  f32: GgufValueType.FLOAT32,
  u64: GgufValueType.UINT64,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
} as const;

function scalar(b: Bytes, type: keyof typeof TYPE_ID, v: number | boolean | string): void {
  switch (type) {
    case 'u8':
      b.push(Uint8Array.of(v as number));
      break;
    case 'u32':
      b.u32(v as number);
      break;
    case 'i32': {
      const x = new Uint8Array(4);
      new DataView(x.buffer).setInt32(0, v as number, true);
      b.push(x);
      break;
    }
    case 'f32': {
      const x = new Uint8Array(4);
      new DataView(x.buffer).setFloat32(0, v as number, true);
      b.push(x);
      break;
    }
    case 'u64':
      b.u64(v as number);
      break;
    case 'bool':
      b.push(Uint8Array.of(v ? 1 : 0));
      break;
    case 'string':
      b.str(v as string);
      break;
  }
}

/** Serialises the header; `offsets` are the tensors' data offsets relative to the data section. */
export function ggufHeader(
  metadata: readonly GgufKV[],
  tensors: readonly GgufTensorToWrite[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): { header: Uint8Array; offsets: number[]; dataBytes: number } {
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(3);
  b.u64(tensors.length);
  const kvs =
    alignment === GGUF_DEFAULT_ALIGNMENT || metadata.some((m) => m.key === 'general.alignment')
      ? metadata
      : [...metadata, { key: 'general.alignment', type: 'u32', value: alignment } as GgufKV];
  b.u64(kvs.length);
  for (const kv of kvs) {
    b.str(kv.key);
    if (kv.type.endsWith('[]')) {
      const et = kv.type.slice(0, -2) as keyof typeof TYPE_ID;
      b.u32(GgufValueType.ARRAY);
      b.u32(TYPE_ID[et]);
      const values = kv.value as ArrayLike<number | boolean | string>;
      b.u64(values.length);
      if (et === 'f32' || et === 'i32' || et === 'u32') {
        const arr =
          et === 'f32'
            ? Float32Array.from(values as ArrayLike<number>)
            : et === 'i32'
              ? Int32Array.from(values as ArrayLike<number>)
              : Uint32Array.from(values as ArrayLike<number>);
        b.push(new Uint8Array(arr.buffer)); // little-endian hosts
      } else {
        for (let i = 0; i < values.length; i++) scalar(b, et, values[i]);
      }
    } else {
      const t = kv.type as keyof typeof TYPE_ID;
      b.u32(TYPE_ID[t]);
      scalar(b, t, kv.value as number | boolean | string);
    }
  }
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    const count = t.dims.reduce((a, d) => a * d, 1);
    if (t.dims[0] % t.type.blockSize !== 0)
      throw new Error(`GGUF writer: tensor '${t.name}' is ${t.type.name}, whose rows must be a multiple of ${t.type.blockSize} values (got ${t.dims[0]})`);
    b.str(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(t.type.id);
    b.u64(off);
    offsets.push(off);
    off += Math.ceil(((count / t.type.blockSize) * t.type.typeSize) / alignment) * alignment;
  }
  const pad = (alignment - (b.length % alignment)) % alignment;
  b.push(new Uint8Array(pad));
  return { header: b.concat(), offsets, dataBytes: off };
}

/** Writes a whole GGUF file to `sink`; returns the bytes written. */
export async function writeGguf(
  sink: ByteSink,
  metadata: readonly GgufKV[],
  tensors: readonly GgufTensorToWrite[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Promise<number> {
  const { header, dataBytes } = ggufHeader(metadata, tensors, alignment);
  await sink.write(header);
  for (const t of tensors) {
    const count = t.dims.reduce((a, d) => a * d, 1);
    const expected = (count / t.type.blockSize) * t.type.typeSize;
    const d = t.data();
    let n = 0;
    if (Symbol.asyncIterator in (d as object)) {
      for await (const chunk of d as AsyncIterable<Uint8Array>) {
        n += chunk.length;
        await sink.write(chunk);
      }
    } else {
      const bytes = await (d as Promise<Uint8Array>);
      n = bytes.length;
      if (n === expected) await sink.write(bytes);
    }
    if (n !== expected) throw new Error(`GGUF writer: tensor '${t.name}' (${t.type.name} [${t.dims.join(', ')}]) has ${n} bytes, expected ${expected}`);
    const pad = (alignment - (n % alignment)) % alignment;
    if (pad) await sink.write(new Uint8Array(pad));
  }
  return header.length + dataBytes;
}

/** A sink that collects everything in memory (tests, small models, browsers). */
export class MemorySink implements ByteSink {
  private chunks: Uint8Array[] = [];
  async write(bytes: Uint8Array): Promise<void> {
    this.chunks.push(bytes.slice());
  }
  bytes(): Uint8Array {
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

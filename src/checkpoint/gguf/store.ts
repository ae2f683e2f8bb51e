/**
 * A gemma3n or gemma4 GGUF seen as a Hugging Face checkpoint: `GgufStore` implements TensorStore with
 * the names loadTextWeights reads (`model.language_model.layers.3.mlp.up_proj.weight` ...), so
 * the same loader, MatFormer slicing and `quantize` work on GGUF files.
 *
 * - Q4_0 linears appear as `NAME.q4` (our packed int4, converted without loss, src/checkpoint/
 *   gguf/quantize.ts): they upload to the int4 kernels as they are. A Q4_0 token embedding also
 *   gives the tied LM head that way (`lm_head.weight.q4`).
 * - F32 / F16 / BF16 tensors are read as stored; other block types (Q8_0, Q4_1, Q5_x, K-quants)
 *   are dequantized to F32 on read, and the two token tables to F16, row by row, so a streamed
 *   per-layer table still reads one row per token.
 * - The stacked altup projections are split back into three [H, H] matrices.
 * Reads are lazy: a tensor is read from the file when the loader asks for it.
 */
import type { ByteSource } from '../../io/byte_source.js';
import type { TensorStore } from '../checkpoint.js';
import { toFloat32, type DType } from '../dtype.js';
import { CheckpointError, type TensorInfo } from '../safetensors.js';
import { Q4_SUFFIX } from '../packed_q4.js';
import { dequantize, floatToHalf, isSupportedType } from './dequant.js';
import { ALTUP_PROJ, ALTUP_UNEMBD_PROJ, GLOBAL_NAMES, LAYER_NAMES } from './gemma3n.js';
import { q4_0ToQ4Matrix } from './quantize.js';
import type { GgufFile, GgufTensorInfo } from './reader.js';

const PREFIX = 'model.language_model.';
const TABLES = new Set(['token_embd.weight', 'per_layer_token_embd.weight']);

interface Entry {
  /** The GGUF tensor it comes from. */
  src: GgufTensorInfo;
  dtype: DType;
  shape: number[];
  /** 'raw': bytes as stored (possibly the first rows only); 'dequant': to dtype; 'q4': packed int4; 'slice': one [H, H] of a stack. */
  kind: 'raw' | 'dequant' | 'q4' | 'slice';
  slice?: number;
}

const DTYPE_OF: Record<string, DType> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

export class GgufStore implements TensorStore {
  private readonly entries = new Map<string, Entry>();
  readonly location: string;
  readonly file: string;

  /**
   * `archNames`: the architecture's tensor names (Hugging Face → GGUF), Gemma 3n's by default;
   * gemma4.ts has Gemma 4's (open_store.ts picks them by `general.architecture`).
   */
  constructor(
    readonly gguf: GgufFile,
    config: { vocab_size_per_layer_input: number },
    private readonly archNames: { global: Readonly<Record<string, string>>; layer: Readonly<Record<string, string>> } = {
      global: GLOBAL_NAMES,
      layer: LAYER_NAMES,
    },
  ) {
    this.location = gguf.name;
    this.file = gguf.name;
    const add = (local: string, src: GgufTensorInfo, rows?: number) => {
      if (!isSupportedType(src.type))
        throw new CheckpointError(
          `${gguf.name}: tensor '${src.name}' has type ${src.type.name}, which is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K-Q6_K)`,
        );
      const shape = [...src.dims].reverse();
      if (rows !== undefined) shape[0] = Math.min(rows, shape[0]);
      const raw = DTYPE_OF[src.type.name];
      const isLinear =
        shape.length === 2 &&
        !TABLES.has(src.name) &&
        src.type.name === 'Q4_0' &&
        !local.startsWith('altup.') &&
        !/altup\.(correction|prediction)_coefs|modality_router/.test(local);
      if (isLinear) this.entries.set(PREFIX + local + Q4_SUFFIX, { src, dtype: 'U8', shape, kind: 'q4' });
      else this.entries.set(PREFIX + local, { src, dtype: raw ?? (TABLES.has(src.name) ? 'F16' : 'F32'), shape, kind: raw ? 'raw' : 'dequant' });
    };
    for (const [local, g] of Object.entries(archNames.global)) {
      const t = gguf.tensors.get(g);
      if (t) add(local, t, g === 'per_layer_token_embd.weight' ? config.vocab_size_per_layer_input : undefined);
    }
    const tok = gguf.tensors.get('token_embd.weight');
    if (tok && tok.type.name === 'Q4_0')
      this.entries.set(PREFIX + 'lm_head.weight' + Q4_SUFFIX, { src: tok, dtype: 'U8', shape: [tok.dims[1], tok.dims[0]], kind: 'q4' });
    for (const [stack, stem] of [
      [ALTUP_PROJ, 'altup_projections'],
      [ALTUP_UNEMBD_PROJ, 'altup_unembed_projections'],
    ] as const) {
      const t = gguf.tensors.get(stack);
      if (!t) continue;
      if (t.dims.length !== 3 || t.dims[0] !== t.dims[1])
        throw new CheckpointError(`${gguf.name}: tensor '${stack}' has dims [${t.dims.join(', ')}], expected [H, H, altup_num_inputs - 1]`);
      if (!isSupportedType(t.type)) throw new CheckpointError(`${gguf.name}: tensor '${stack}' has unsupported type ${t.type.name}`);
      for (let i = 0; i < t.dims[2]; i++)
        this.entries.set(`${PREFIX}${stem}.${i}.weight`, { src: t, dtype: 'F32', shape: [t.dims[1], t.dims[0]], kind: 'slice', slice: i });
    }
    for (const t of gguf.tensors.values()) {
      const m = /^blk\.(\d+)\.(.+)$/.exec(t.name);
      if (!m) continue;
      const local = Object.entries(archNames.layer).find(([, g]) => g === m[2])?.[0];
      if (local) add(`layers.${m[1]}.${local}`, t);
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }
  names(): string[] {
    return [...this.entries.keys()];
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(`${this.file}: missing tensor '${name}'${this.ggufNameOf(name)}`);
    return e;
  }

  /** " (GGUF 'blk.3.ffn_up.weight')": the file's name for a tensor the loader asked for, for errors. */
  private ggufNameOf(name: string): string {
    const local = name.startsWith(PREFIX) ? name.slice(PREFIX.length).replace(/\.q4$/, '') : name;
    const m = /^layers\.(\d+)\.(.+)$/.exec(local);
    const g = m ? (m[2] in this.archNames.layer ? `blk.${m[1]}.${this.archNames.layer[m[2]]}` : null) : (this.archNames.global[local] ?? null);
    return g ? ` (GGUF '${g}')` : '';
  }

  private byteLength(e: Entry): number {
    if (e.kind === 'q4') return 32 + Math.ceil(e.shape[0] / 4) * (e.shape[1] / 32) * 80;
    return e.shape.reduce((a, d) => a * d, 1) * (e.dtype === 'F32' ? 4 : 2);
  }

  async info(name: string): Promise<TensorInfo & { file: string }> {
    const e = this.entry(name);
    return {
      name,
      dtype: e.dtype,
      shape: e.kind === 'q4' ? [this.byteLength(e)] : e.shape,
      offset: e.kind === 'raw' ? e.src.offset : 0,
      byteLength: this.byteLength(e),
      file: this.file,
    };
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const src = this.gguf.source;
    switch (e.kind) {
      case 'raw':
        return src.read(e.src.offset, this.byteLength(e));
      case 'q4':
        return q4_0ToQ4Matrix(await src.read(e.src.offset, e.src.byteLength), e.shape[0], e.shape[1]).toBytes();
      case 'slice': {
        const [rows, cols] = e.shape,
          per = ((rows * cols) / e.src.type.blockSize) * e.src.type.typeSize;
        const out = new Float32Array(rows * cols);
        dequantize(e.src.type, await src.read(e.src.offset + e.slice! * per, per), rows * cols, out);
        return new Uint8Array(out.buffer);
      }
      case 'dequant': {
        const s = this.sourceFor(e);
        return s.read(0, s.size);
      }
    }
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const e = this.entry(name);
    if (expectedShape && (expectedShape.length !== e.shape.length || expectedShape.some((d, i) => d !== e.shape[i]))) {
      throw new CheckpointError(
        `${this.file}: tensor '${name}' (GGUF '${e.src.name}') has shape [${e.shape.join(', ')}] but the config implies [${expectedShape.join(', ')}]`,
      );
    }
    const count = e.shape.reduce((a, d) => a * d, 1);
    return toFloat32(await this.readBytes(name), e.dtype, count);
  }

  private sourceFor(e: Entry): DequantSource {
    return new DequantSource(this.gguf.source, e.src, e.shape[0], e.shape[1] ?? 1, e.dtype === 'F16' ? 'F16' : 'F32');
  }

  async sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }> {
    const e = this.entry(name);
    if (e.kind === 'raw') return { info: await this.info(name), source: this.gguf.source };
    if (e.kind === 'dequant') return { info: { ...(await this.info(name)), offset: 0 }, source: this.sourceFor(e) };
    // Converted tensors (packed int4, altup slices): materialized on the first read, then sliced.
    let bytes: Promise<Uint8Array> | null = null;
    const size = this.byteLength(e);
    const source: ByteSource = {
      name: `${this.file} (${name})`,
      size,
      read: async (offset, length) => {
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size)
          throw new RangeError(`${this.file} (${name}): read of ${length} bytes at offset ${offset} is outside the tensor (size ${size})`);
        bytes ??= this.readBytes(name);
        return (await bytes).subarray(offset, offset + length);
      },
    };
    return { info: { ...(await this.info(name)), offset: 0 }, source };
  }

  async close(): Promise<void> {
    await this.gguf.source.close?.();
  }
}

/**
 * A quantized [rows, cols] tensor presented as F16 or F32 bytes: a read of any byte range
 * dequantizes only the rows it touches (a streamed table row costs one row of blocks).
 */
class DequantSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  private readonly rowBytesOut: number;
  private readonly rowBytesIn: number;
  constructor(
    private readonly src: ByteSource,
    private readonly t: GgufTensorInfo,
    readonly rows: number,
    readonly cols: number,
    readonly dtype: 'F16' | 'F32',
  ) {
    this.name = `${src.name} (${t.name}, ${t.type.name} as ${dtype})`;
    this.rowBytesOut = cols * (dtype === 'F16' ? 2 : 4);
    this.rowBytesIn = (cols / t.type.blockSize) * t.type.typeSize;
    this.size = rows * this.rowBytesOut;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${this.name}: read of ${length} bytes at offset ${offset} is outside the tensor (size ${this.size})`);
    }
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const r0 = Math.floor(offset / this.rowBytesOut),
      r1 = Math.ceil((offset + length) / this.rowBytesOut);
    const chunk = Math.max(1, Math.floor((16 << 20) / (this.cols * 4)));
    const f = new Float32Array(chunk * this.cols);
    const h = this.dtype === 'F16' ? new Uint16Array(chunk * this.cols) : null;
    for (let r = r0; r < r1; r += chunk) {
      const n = Math.min(chunk, r1 - r);
      dequantize(this.t.type, await this.src.read(this.t.offset + r * this.rowBytesIn, n * this.rowBytesIn), n * this.cols, f);
      let bytes: Uint8Array;
      if (h) {
        for (let i = 0; i < n * this.cols; i++) h[i] = floatToHalf(f[i]);
        bytes = new Uint8Array(h.buffer, 0, n * this.rowBytesOut);
      } else bytes = new Uint8Array(f.buffer, 0, n * this.rowBytesOut);
      // Copy the part of rows [r, r+n) that falls in [offset, offset+length).
      const start = r * this.rowBytesOut,
        lo = Math.max(offset, start),
        hi = Math.min(offset + length, start + n * this.rowBytesOut);
      out.set(bytes.subarray(lo - start, hi - start), lo - offset);
    }
    return out;
  }
}

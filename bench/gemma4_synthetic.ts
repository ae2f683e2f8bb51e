/**
 * Synthetic Gemma 4 E2B / E4B checkpoints at real size, with the Hugging Face tensor names:
 * the full-size config and every tensor shape come from test/golden/gemma4/full-size/<size>/
 * (written by transformers 5.18 from the conversion script's values), the values from a seeded
 * PRNG keyed by the tensor name (bf16-rounded, as a real checkpoint). Nothing touches the disk:
 * the 2.35 B / 2.82 B-parameter per-layer table is a virtual file whose bytes are generated
 * when read, so streaming it exercises the real row-reading path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TensorStore } from '../src/checkpoint/checkpoint.js';
import { f32ToBf16, toFloat32 } from '../src/checkpoint/dtype.js';
import { numel, type TensorInfo } from '../src/checkpoint/safetensors.js';
import type { ByteSource } from '../src/io/byte_source.js';
import { packageRoot } from '../src/node/default_model.js';
import { packedManifest } from '../src/checkpoint/packed_format.js';
import { planPackedV2 } from '../src/checkpoint/pack_v2.js';
import { writeSharded } from '../src/cli/stream_writer.js';
import { fillUniform, hash } from './e2b_synthetic.js';

export type Gemma4Size = 'e2b' | 'e4b';

export function fullSizeDir(size: Gemma4Size): string {
  return join(packageRoot(), 'test', 'golden', 'gemma4', 'full-size', size);
}

function std(name: string, shape: readonly number[]): number {
  if (name.includes('embed_tokens')) return 0.5;
  if (shape.length <= 1) return 0.3; // norms, layer_scalar: uniform around 1 below
  return 1 / Math.sqrt(shape[shape.length - 1]);
}

function generate(name: string, shape: readonly number[], offset = 0, n = numel(shape)): Float32Array {
  const out = new Float32Array(n);
  fillUniform(out, hash(name) + offset, std(name, shape));
  if (shape.length <= 1) for (let i = 0; i < n; i++) out[i] += 1;
  return out;
}

/** The per-layer table as a read-only bf16 "file": rows generated on demand, deterministic per row. */
class GeneratedTableSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    rows: number,
    private readonly cols: number,
  ) {
    this.size = rows * cols * 2;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw new RangeError(`${this.name}: read of ${length} bytes at ${offset} is outside the file (size ${this.size})`);
    const rowBytes = this.cols * 2,
      out = new Uint8Array(length);
    const f = new Float32Array(this.cols),
      b = new Uint16Array(this.cols);
    for (let r = Math.floor(offset / rowBytes); r * rowBytes < offset + length; r++) {
      fillUniform(f, hash(this.name) + r, 0.5);
      f32ToBf16(f, b);
      const bytes = new Uint8Array(b.buffer),
        start = r * rowBytes;
      const from = Math.max(offset, start),
        to = Math.min(offset + length, start + rowBytes);
      out.set(bytes.subarray(from - start, to - start), from - offset);
    }
    return out;
  }
}

export class SyntheticGemma4Store implements TensorStore {
  readonly location: string;
  readonly file = '<generated>';
  readonly configText: string;
  private readonly shapes: Map<string, number[]>;

  constructor(readonly size: Gemma4Size) {
    const dir = fullSizeDir(size);
    this.location = `<synthetic Gemma 4 ${size.toUpperCase()}>`;
    this.configText = readFileSync(join(dir, 'config.json'), 'utf8');
    this.shapes = new Map(Object.entries(JSON.parse(readFileSync(join(dir, 'state_dict_shapes.json'), 'utf8')) as Record<string, number[]>));
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }
  names(): string[] {
    return [...this.shapes.keys()];
  }

  async info(name: string): Promise<TensorInfo & { file: string }> {
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`${this.location}: no tensor '${name}'`);
    return { name, dtype: 'BF16', shape, offset: 0, byteLength: numel(shape) * 2, file: this.file };
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const info = await this.info(name);
    if (info.byteLength > 2 ** 31) throw new Error(`${this.location}: '${name}' is ${(info.byteLength / 1e9).toFixed(1)} GB: stream it (sourceOf)`);
    const f = generate(name, info.shape);
    const b = new Uint16Array(f.length);
    f32ToBf16(f, b);
    return new Uint8Array(b.buffer);
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const info = await this.info(name);
    if (expectedShape && (expectedShape.length !== info.shape.length || expectedShape.some((d, i) => d !== info.shape[i])))
      throw new Error(`${this.location}: '${name}' is [${info.shape}], asked [${expectedShape}]`);
    return toFloat32(await this.readBytes(name), 'BF16', numel(info.shape));
  }

  async sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }> {
    const info = await this.info(name);
    if (info.shape.length !== 2) throw new Error(`${this.location}: '${name}' is not a table`);
    return { info, source: new GeneratedTableSource(name, info.shape[0], info.shape[1]) };
  }

  async close(): Promise<void> {}
}

/**
 * The synthetic model run through `gemma3n quantize`'s planner (text only): a packed v2 folder
 * in .cache/gemma4-<size>-synthetic-v2, written once (a few minutes: every value generated and
 * quantized, the per-layer table row chunk by row chunk), then loaded like any packed folder.
 */
export async function packedGemma4(size: Gemma4Size, log: (s: string) => void = () => {}): Promise<string> {
  const dir = join(packageRoot(), '.cache', `gemma4-${size}-synthetic-v2`);
  if (existsSync(join(dir, 'config.json'))) return dir; // config.json is written last
  const store = new SyntheticGemma4Store(size);
  log(`quantizing the synthetic Gemma 4 ${size.toUpperCase()} to packed v2 in ${dir} (once) ...`);
  const t0 = performance.now();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const plan = await planPackedV2(store, store.configText, { textOnly: true });
  const written = await writeSharded(dir, plan.tensors, { shardBytes: 2 ** 30, metadata: { format: 'gemma3n-ts packed v2' } });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(store.configText), quantization_config: packedManifest(true, 'none') }, null, 2));
  log(
    `  ${(written.bytes / 2 ** 30).toFixed(2)} GB in ${written.files.length} shard(s), ${plan.dropped.length} tensors left out, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return dir;
}

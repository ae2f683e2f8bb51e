/**
 * A synthetic checkpoint with the exact Gemma 3n E2B text-decoder shapes, for benchmarks.
 *
 * Every tensor except the per-layer embedding table is generated on demand from its name (a
 * fast seeded PRNG, uniform with the std of the golden models' initialisation), so nothing
 * but the table touches the disk. The table (262144 × 30·256 bf16 = 4.03 GB, the thing
 * "selective parameter activation" keeps out of memory) is written once into .cache/ as a real
 * safetensors file, so streaming it measures real file reads.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Checkpoint, type TensorStore } from '../src/checkpoint/checkpoint.js';
import { parseTextConfig, type TextConfig } from '../src/checkpoint/config.js';
import { f32ToBf16, toFloat32 } from '../src/checkpoint/dtype.js';
import { textTensorShapes } from '../src/checkpoint/synthetic.js';
import { numel, type TensorInfo } from '../src/checkpoint/safetensors.js';
import { NodeFolder } from '../src/node/fs_folder.js';
import { packageRoot } from '../src/node/default_model.js';
import type { ByteSource } from '../src/io/byte_source.js';

/** The text_config of google/gemma-3n-E2B-it. */
export const E2B_TEXT_CONFIG = {
  model_type: 'gemma3n_text',
  vocab_size: 262_400,
  vocab_size_per_layer_input: 262_144,
  hidden_size: 2048,
  hidden_size_per_layer_input: 256,
  intermediate_size: Array(30).fill(8192),
  num_hidden_layers: 30,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  head_dim: 256,
  sliding_window: 512,
  layer_types: Array.from({ length: 30 }, (_, i) => ((i + 1) % 5 === 0 ? 'full_attention' : 'sliding_attention')),
  num_kv_shared_layers: 10,
  laurel_rank: 64,
  altup_num_inputs: 4,
  final_logit_softcapping: 30,
  activation_sparsity_pattern: Array.from({ length: 30 }, (_, i) => (i < 10 ? 0.95 : 0)),
  rope_theta: 1_000_000,
  rope_local_base_freq: 10_000,
  max_position_embeddings: 32_768,
};

export const PLE = 'model.language_model.embed_tokens_per_layer.weight';

export function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Fills `out` with uniform values of standard deviation `std` (xorshift32; fast, seeded). */
export function fillUniform(out: Float32Array, seed: number, std: number): void {
  let x = seed | 1;
  const a = (std * Math.sqrt(3)) / 2 ** 31;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x | 0) * a;
  }
}

export function stdOf(name: string, shape: readonly number[]): number {
  if (name.includes('embed_tokens')) return 0.3;
  if (shape.length === 1) return 0.3; // norms: uniform around 1 below
  if (name.includes('coefs')) return 0.2;
  return 1 / Math.sqrt(shape[1]);
}

export function generate(name: string, shape: readonly number[]): Float32Array {
  const out = new Float32Array(numel(shape));
  fillUniform(out, hash(name), stdOf(name, shape));
  if (shape.length === 1 && !name.endsWith('correct_output_scale')) for (let i = 0; i < out.length; i++) out[i] += 1; // norm weights ≈ 1
  return out;
}

/** Writes the PLE table once (bf16), in 256 MB slices, as a one-tensor safetensors file. */
export async function ensurePleFile(c: TextConfig, log: (s: string) => void = () => {}): Promise<string> {
  const dir = join(packageRoot(), '.cache', 'e2b-synthetic-ple');
  const file = join(dir, 'model.safetensors');
  if (existsSync(file)) return dir;
  await mkdir(dir, { recursive: true });
  const rows = c.vocabSizePerLayerInput,
    cols = c.numHiddenLayers * c.hiddenSizePerLayerInput;
  log(`writing the synthetic E2B per-layer embedding table (${rows}×${cols} bf16, ${((rows * cols * 2) / 1e9).toFixed(2)} GB) to ${file} ...`);
  let json = JSON.stringify({ [PLE]: { dtype: 'BF16', shape: [rows, cols], data_offsets: [0, rows * cols * 2] } });
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  await fh.write(head);
  const rowsPerSlice = Math.floor((128 << 20) / cols);
  const f = new Float32Array(rowsPerSlice * cols),
    b = new Uint16Array(rowsPerSlice * cols);
  for (let r = 0; r < rows; r += rowsPerSlice) {
    const n = Math.min(rowsPerSlice, rows - r) * cols;
    fillUniform(f.subarray(0, n), hash(PLE) + r, 0.3);
    f32ToBf16(f.subarray(0, n), b.subarray(0, n));
    await fh.write(new Uint8Array(b.buffer, 0, n * 2));
  }
  await fh.close();
  await rename(tmp, file);
  return dir;
}

/** The synthetic E2B checkpoint: generated tensors + the PLE table from disk. */
export class SyntheticE2BStore implements TensorStore {
  readonly location = '<synthetic E2B>';
  readonly file = '<generated>';
  private readonly shapes: Map<string, number[]>;

  private constructor(
    readonly config: TextConfig,
    private readonly ple: Checkpoint,
  ) {
    this.shapes = new Map(textTensorShapes(config));
  }

  static async open(log?: (s: string) => void): Promise<SyntheticE2BStore> {
    const c = parseTextConfig(E2B_TEXT_CONFIG);
    const dir = await ensurePleFile(c, log);
    return new SyntheticE2BStore(c, await Checkpoint.open(new NodeFolder(dir)));
  }

  has(name: string): boolean {
    return this.shapes.has(name);
  }
  names(): string[] {
    return [...this.shapes.keys()];
  }

  async info(name: string): Promise<TensorInfo & { file: string }> {
    if (name === PLE) return this.ple.info(name);
    const shape = this.shapes.get(name);
    if (!shape) throw new Error(`synthetic E2B: no tensor '${name}'`);
    return { name, dtype: 'BF16', shape, offset: 0, byteLength: numel(shape) * 2, file: this.file };
  }

  async readBytes(name: string): Promise<Uint8Array> {
    if (name === PLE) return this.ple.readBytes(name);
    const f = generate(name, (await this.info(name)).shape);
    const b = new Uint16Array(f.length);
    f32ToBf16(f, b);
    return new Uint8Array(b.buffer);
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const info = await this.info(name);
    if (expectedShape?.some((d, i) => d !== info.shape[i])) throw new Error(`synthetic E2B: '${name}' is [${info.shape}], asked [${expectedShape}]`);
    return toFloat32(await this.readBytes(name), 'BF16', numel(info.shape)); // bf16-rounded, as a real checkpoint
  }

  async sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }> {
    if (name !== PLE) throw new Error(`synthetic E2B: '${name}' is generated, not stored`);
    return this.ple.sourceOf(name);
  }

  close(): Promise<void> {
    return this.ple.close();
  }
}

/** Several stores seen as one (the first that has a tensor serves it). */
class UnionStore implements TensorStore {
  readonly location: string;
  readonly file: string;
  constructor(private readonly stores: TensorStore[]) {
    this.location = stores.map((s) => s.location).join(' + ');
    this.file = stores.map((s) => s.file).join(' + ');
  }
  private of(name: string): TensorStore {
    const s = this.stores.find((x) => x.has(name));
    if (!s) throw new Error(`${this.location}: missing tensor '${name}'`);
    return s;
  }
  has(name: string): boolean {
    return this.stores.some((s) => s.has(name));
  }
  names(): string[] {
    return [...new Set(this.stores.flatMap((s) => s.names()))];
  }
  info(name: string) {
    return this.of(name).info(name);
  }
  readF32(name: string, shape?: readonly number[]) {
    return this.of(name).readF32(name, shape);
  }
  readBytes(name: string) {
    return this.of(name).readBytes(name);
  }
  sourceOf(name: string) {
    return this.of(name).sourceOf(name);
  }
  async close(): Promise<void> {
    for (const s of this.stores) await s.close();
  }
}

/**
 * The synthetic E2B model as a packed int4 checkpoint (gemma3n quantize's format), written
 * once into .cache/ so benchmarks load it in seconds instead of generating and quantizing
 * 2 B parameters every run. The PLE table stays in its own file.
 */
export async function packedE2B(log: (s: string) => void = () => {}): Promise<{ store: TensorStore; config: TextConfig }> {
  const { packQ4 } = await import('../src/checkpoint/packed_q4.js');
  const { writeModelFolder } = await import('../src/cli/write_checkpoint.js');
  const dir = join(packageRoot(), '.cache', 'e2b-synthetic-q4');
  const synthetic = await SyntheticE2BStore.open(log);
  if (!existsSync(join(dir, 'model.safetensors.index.json'))) {
    log(`packing the synthetic E2B model to int4 in ${dir} (once) ...`);
    const withoutPle: TensorStore = new UnionStore([synthetic]);
    const names = synthetic.names().filter((n) => n !== PLE);
    const view: TensorStore = {
      ...withoutPle,
      location: withoutPle.location,
      file: withoutPle.file,
      names: () => names,
      has: (n) => n !== PLE && synthetic.has(n),
      info: (n) => synthetic.info(n),
      readF32: (n, s) => synthetic.readF32(n, s),
      readBytes: (n) => synthetic.readBytes(n),
      sourceOf: (n) => synthetic.sourceOf(n),
      close: async () => {},
    };
    await writeModelFolder(dir, E2B_TEXT_CONFIG, packQ4(view, JSON.stringify(E2B_TEXT_CONFIG)), dir);
  }
  const packed = await Checkpoint.open(new NodeFolder(dir));
  return { store: new UnionStore([packed, synthetic]), config: synthetic.config };
}

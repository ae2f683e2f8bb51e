/**
 * A checkpoint: one `model.safetensors`, or shards listed by `model.safetensors.index.json`
 * (`{"weight_map": {tensor name: shard file}}`), as Hugging Face publishes them.
 * Shards are opened (headers only) on first use; tensors are read one at a time.
 */
import type { ByteSource, FileProvider } from '../io/byte_source.js';
import { CheckpointError, SafetensorsFile, type TensorInfo } from './safetensors.js';

/**
 * What model loaders read from: a checkpoint on disk, or a view of one (a MatFormer slice,
 * src/checkpoint/matformer.ts).
 */
export interface TensorStore {
  readonly location: string;
  /** The file that lists the tensors (for error messages). */
  readonly file: string;
  has(name: string): boolean;
  names(): string[];
  info(name: string): Promise<TensorInfo & { file: string }>;
  readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array>;
  readBytes(name: string): Promise<Uint8Array>;
  /** The byte source and absolute offset of a tensor, when it is stored contiguously as-is. */
  sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }>;
  close(): Promise<void>;
}

export class Checkpoint implements TensorStore {
  private readonly shards = new Map<string, Promise<SafetensorsFile>>();

  private constructor(
    private readonly folder: FileProvider,
    /** The file that lists the tensors: model.safetensors or the index (for error messages). */
    readonly file: string,
    /** tensor name -> shard file name */
    readonly weightMap: ReadonlyMap<string, string>,
  ) {}

  get location(): string {
    return this.folder.location;
  }

  /** Opens `file` (default: the index if present, else model.safetensors). */
  static async open(folder: FileProvider, file?: string): Promise<Checkpoint> {
    const index = 'model.safetensors.index.json';
    if (file === undefined && (await folder.exists(index))) return Checkpoint.openIndex(folder, index);
    if (file?.endsWith('.index.json')) return Checkpoint.openIndex(folder, file);
    const name = file ?? 'model.safetensors';
    if (!(await folder.exists(name))) throw new CheckpointError(`${folder.location}: no ${name} and no ${index}`);
    const st = await SafetensorsFile.open(await folder.open(name));
    const ckpt = new Checkpoint(folder, name, new Map([...st.tensors.keys()].map((k) => [k, name])));
    ckpt.shards.set(name, Promise.resolve(st));
    return ckpt;
  }

  private static async openIndex(folder: FileProvider, index: string): Promise<Checkpoint> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await folder.readText(index));
    } catch (e) {
      throw new CheckpointError(`${folder.location}/${index}: not valid JSON (${(e as Error).message})`);
    }
    const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
    if (typeof map !== 'object' || map === null) throw new CheckpointError(`${folder.location}/${index}: missing "weight_map" object`);
    const weightMap = new Map<string, string>();
    for (const [k, v] of Object.entries(map)) {
      if (typeof v !== 'string' || v.includes('/') || v.includes('\\'))
        throw new CheckpointError(`${folder.location}/${index}: weight_map entry '${k}' has invalid shard name ${JSON.stringify(v)}`);
      weightMap.set(k, v);
    }
    // Every shard must exist and actually hold what the index says it holds.
    const ckpt = new Checkpoint(folder, index, weightMap);
    for (const shard of new Set(weightMap.values())) {
      if (!(await folder.exists(shard))) throw new CheckpointError(`${folder.location}/${index}: shard '${shard}' is missing`);
      const st = await ckpt.shard(shard);
      for (const [k, v] of weightMap)
        if (v === shard && !st.tensors.has(k)) throw new CheckpointError(`${st.name}: index says it holds tensor '${k}' but it does not`);
    }
    return ckpt;
  }

  private shard(file: string): Promise<SafetensorsFile> {
    let p = this.shards.get(file);
    if (!p) {
      p = this.folder.open(file).then((src) => SafetensorsFile.open(src));
      this.shards.set(file, p);
    }
    return p;
  }

  has(name: string): boolean {
    return this.weightMap.has(name);
  }

  names(): string[] {
    return [...this.weightMap.keys()];
  }

  private async fileOf(name: string): Promise<SafetensorsFile> {
    const file = this.weightMap.get(name);
    if (file === undefined) throw new CheckpointError(`${this.location}/${this.file}: missing tensor '${name}'`);
    return this.shard(file);
  }

  /** The byte source holding a tensor (for reading parts of it, e.g. single table rows). */
  async sourceOf(name: string): Promise<{ info: TensorInfo; source: ByteSource }> {
    const st = await this.fileOf(name);
    return { info: st.info(name), source: st.source };
  }

  async info(name: string): Promise<TensorInfo & { file: string }> {
    const st = await this.fileOf(name);
    return { ...st.info(name), file: st.name };
  }

  /** Reads a tensor as float32, checking its shape when one is expected. */
  async readF32(name: string, expectedShape?: readonly number[]): Promise<Float32Array> {
    const st = await this.fileOf(name);
    if (expectedShape) checkShape(st.name, st.info(name), expectedShape);
    return st.readF32(name);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    return (await this.fileOf(name)).readBytes(name);
  }

  async close(): Promise<void> {
    for (const p of this.shards.values()) {
      const st = await p.catch(() => undefined);
      await st?.source.close?.();
    }
  }
}

export function checkShape(file: string, t: TensorInfo, expected: readonly number[]): void {
  const same = t.shape.length === expected.length && t.shape.every((d, i) => d === expected[i]);
  if (!same) throw new CheckpointError(`${file}: tensor '${t.name}' has shape [${t.shape.join(', ')}] but the config implies [${expected.join(', ')}]`);
}

/** Finds the text decoder's name prefix in a checkpoint. */
export function textPrefix(ckpt: TensorStore): string {
  for (const p of ['model.language_model.', 'model.', '']) if (ckpt.has(`${p}embed_tokens.weight`) || ckpt.has(`${p}embed_tokens.weight.q4`)) return p; // .q4: packed v2
  throw new CheckpointError(`${ckpt.location}/${ckpt.file}: missing tensor 'model.language_model.embed_tokens.weight' (not a Gemma 3n checkpoint?)`);
}

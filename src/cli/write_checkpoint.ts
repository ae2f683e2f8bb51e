/** Writes a model folder: tensors in ~1 GB safetensors shards with an index, plus config and tokenizer files. */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { numel, writeSafetensors, type TensorToWrite } from '../checkpoint/safetensors.js';

/** Shards stay under this size so each fits comfortably in one buffer. */
const SHARD_BYTES = 1 << 30;

export const AUX_FILES = [
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'chat_template.jinja',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'processor_config.json',
  'generation_config.json',
];

export interface WrittenCheckpoint {
  shards: number;
  parameters: number;
  bytes: number;
}

export async function writeModelFolder(
  out: string,
  config: object,
  tensors: AsyncIterable<TensorToWrite>,
  fromDir: string,
  metadata: Record<string, unknown> = {},
): Promise<WrittenCheckpoint> {
  await mkdir(out, { recursive: true });
  // Shards are named after their index first, then renamed once the count is known.
  const shardFiles: string[] = [];
  const shardOf = new Map<string, number>();
  let batch: TensorToWrite[] = [],
    size = 0,
    parameters = 0,
    bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const tmp = `shard-${shardFiles.length}.tmp`;
    await writeFile(join(out, tmp), writeSafetensors(batch));
    for (const t of batch) shardOf.set(t.name, shardFiles.length);
    shardFiles.push(tmp);
    batch = [];
    size = 0;
  };
  for await (const t of tensors) {
    if (size > 0 && size + t.data.byteLength > SHARD_BYTES) await flush();
    batch.push(t);
    size += t.data.byteLength;
    bytes += t.data.byteLength;
    parameters += numel(t.shape);
  }
  await flush();
  const n = shardFiles.length;
  const names = shardFiles.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const { rename } = await import('node:fs/promises');
  for (let i = 0; i < n; i++) await rename(join(out, shardFiles[i]), join(out, names[i]));
  const weightMap = Object.fromEntries([...shardOf].map(([k, i]) => [k, names[i]]));
  await writeFile(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: bytes, ...metadata }, weight_map: weightMap }, null, 1));
  await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of AUX_FILES) if (existsSync(join(fromDir, f))) await copyFile(join(fromDir, f), join(out, f));
  return { shards: n, parameters, bytes };
}

/**
 * Writes sharded safetensors files without holding a tensor, let alone a shard, in memory.
 *
 * Every tensor announces its dtype, shape and byte length up front (so each shard's header can
 * be written first) and then produces its bytes in pieces at offsets of its own choosing (a
 * 4-GB embedding table is quantized a few thousand rows at a time; a packed int4 matrix writes
 * its codes and its scales as two streams). Peak memory is the largest piece, not the model.
 */
import { open, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DTYPE_BYTES } from '../checkpoint/dtype.js';
import type { PlannedTensor } from '../checkpoint/planned_tensor.js';
import { numel } from '../checkpoint/safetensors.js';

export type { PlannedTensor, TensorSink } from '../checkpoint/planned_tensor.js';

export interface ShardedWriteResult {
  /** Shard file names, in order. */
  files: string[];
  /** tensor name → shard file. */
  weightMap: Record<string, string>;
  bytes: number;
  parameters: number;
}

/** One safetensors header (length + JSON padded to 8 bytes) for tensors laid out in order. */
function header(tensors: readonly PlannedTensor[], metadata: Record<string, string>): Uint8Array {
  const h: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = numel(t.shape) * DTYPE_BYTES[t.dtype];
    h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = new TextEncoder().encode(JSON.stringify(h));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(h) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes `tensors` (in order) into `model-0000i-of-0000n.safetensors` shards of at most
 * `shardBytes` each (a bigger tensor gets a shard of its own) and the HF index next to them.
 * `onTensor` is told after each tensor (for progress).
 */
export async function writeSharded(
  out: string,
  tensors: readonly PlannedTensor[],
  opts: { shardBytes?: number; metadata?: Record<string, string>; onTensor?: (name: string, done: number, total: number) => void } = {},
): Promise<ShardedWriteResult> {
  const limit = opts.shardBytes ?? 4 * 2 ** 30;
  const sizeOf = (t: PlannedTensor) => numel(t.shape) * DTYPE_BYTES[t.dtype];
  const groups: PlannedTensor[][] = [];
  let cur: PlannedTensor[] = [],
    size = 0;
  for (const t of tensors) {
    if (cur.length > 0 && size + sizeOf(t) > limit) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += sizeOf(t);
  }
  if (cur.length > 0) groups.push(cur);
  const n = groups.length;
  const files = groups.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  let bytes = 0,
    parameters = 0,
    done = 0;
  for (let s = 0; s < n; s++) {
    const tmp = join(out, `${files[s]}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      const head = header(groups[s], opts.metadata ?? { format: 'pt' });
      await fh.write(head, 0, head.length, 0);
      let base = head.length;
      for (const t of groups[s]) {
        const len = sizeOf(t);
        let written = 0;
        await t.write(async (offset, piece) => {
          if (offset < 0 || offset + piece.length > len)
            throw new Error(`writeSharded: '${t.name}' wrote ${piece.length} bytes at ${offset}, outside its ${len} bytes`);
          let p = 0;
          while (p < piece.length) p += (await fh.write(piece, p, piece.length - p, base + offset + p)).bytesWritten;
          written += piece.length;
        });
        if (written !== len) throw new Error(`writeSharded: '${t.name}' wrote ${written} bytes, its dtype and shape need ${len}`);
        weightMap[t.name] = files[s];
        base += len;
        bytes += len;
        parameters += numel(t.shape);
        opts.onTensor?.(t.name, ++done, tensors.length);
      }
    } finally {
      await fh.close();
    }
    await rename(tmp, join(out, files[s]));
  }
  await writeFile(
    join(out, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: bytes, ...(opts.metadata ?? {}) }, weight_map: weightMap }, null, 1),
  );
  return { files, weightMap, bytes, parameters };
}

export { inMemory } from '../checkpoint/planned_tensor.js';

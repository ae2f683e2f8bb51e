/** Shared test helpers: open golden files, compare arrays. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { NodeFolder } from '../src/node/fs_folder.js';
import { MemoryFolder, MemorySource } from '../src/io/byte_source.js';
import { SafetensorsFile, writeSafetensors } from '../src/checkpoint/safetensors.js';

export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');

export function goldenFolder(name: string): NodeFolder {
  return new NodeFolder(join(GOLDEN, name));
}

/** Opens a (small) safetensors file held in memory, so no file handle is left open. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(new MemorySource(readFileSync(path), path));
}

/** Max |a - b| over all elements; throws on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function argmax(x: ArrayLike<number>, offset = 0, n = x.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
  return best;
}

/**
 * A copy of a golden model folder with its model.safetensors split over `n` shards and a
 * model.safetensors.index.json, in memory (tensors dealt round-robin).
 */
export async function shardedCopy(dir: string, n: number, label = 'sharded'): Promise<MemoryFolder> {
  const st = await openSafetensors(join(dir, 'model.safetensors'));
  const names = [...st.tensors.keys()];
  const files = new Map<string, Uint8Array>([['config.json', readFileSync(join(dir, 'config.json'))]]);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < n; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const tensors = [];
    for (const name of names.filter((_, i) => i % n === s)) {
      const info = st.info(name);
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await st.readBytes(name) });
      weightMap[name] = file;
    }
    files.set(file, writeSafetensors(tensors));
  }
  files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: weightMap })));
  return new MemoryFolder(files, label);
}

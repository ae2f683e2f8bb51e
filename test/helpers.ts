/** Shared test helpers: open golden files, compare arrays. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { NodeFolder } from '../src/node/fs_folder.js';
import { MemorySource } from '../src/io/byte_source.js';
import { SafetensorsFile } from '../src/checkpoint/safetensors.js';

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

/** Test helpers: read golden safetensors files from test/golden/vision. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemorySource } from '../../../src/io/byte_source.js';
import { SafetensorsFile } from '../../../src/checkpoint/safetensors.js';

export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '../../golden/vision');

export function goldenBytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(GOLDEN, rel)));
}

export async function openGolden(rel: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(new MemorySource(goldenBytes(rel), rel));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

import { checkShape } from '../../../src/checkpoint/checkpoint.js';
import type { TensorReader } from '../../../src/encoders/vision/tensor.js';

/** A shape-checking TensorReader over one safetensors file. */
export function stReader(st: SafetensorsFile): TensorReader {
  return {
    readF32: async (name, shape) => {
      if (shape) checkShape(st.name, st.info(name), shape);
      return st.readF32(name);
    },
    has: (name) => st.tensors.has(name),
  };
}

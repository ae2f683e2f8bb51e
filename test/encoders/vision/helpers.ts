/** The vision tests' helpers: golden files of test/golden/vision, a shape-checking reader (shared ones: test/helpers.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemorySource } from '../../../src/io/byte_source.js';
import { checkShape } from '../../../src/checkpoint/checkpoint.js';
import { SafetensorsFile } from '../../../src/checkpoint/safetensors.js';
import type { TensorReader } from '../../../src/encoders/vision/tensor.js';
import { GOLDEN as ALL_GOLDEN } from '../../helpers.js';

export const GOLDEN = join(ALL_GOLDEN, 'vision');

export function goldenBytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(join(GOLDEN, rel)));
}

export async function openGolden(rel: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(new MemorySource(goldenBytes(rel), rel));
}

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

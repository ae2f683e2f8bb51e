/** Loads tensors from test/golden/audio/ for the audio tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GOLDEN } from '../../helpers.js';

export const GOLDEN_DIR = join(GOLDEN, 'audio');

export interface GoldenTensor {
  shape: number[];
  dtype: string;
  /** Values as float64 (BOOL/I16 widened). */
  data: Float64Array;
}

export async function loadGolden(rel: string): Promise<Map<string, GoldenTensor>> {
  // A minimal reader of its own: the golden files put BOOL tensors between F32 ones, so data
  // offsets are not element-aligned, which src/checkpoint/safetensors.ts refuses.
  const bytes: Uint8Array = readFileSync(join(GOLDEN_DIR, rel));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, GoldenTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const raw = bytes.subarray(8 + n + info.data_offsets[0], 8 + n + info.data_offsets[1]);
    const buf = new ArrayBuffer(raw.byteLength);
    new Uint8Array(buf).set(raw);
    let data: Float64Array;
    switch (info.dtype) {
      case 'F64': data = new Float64Array(buf); break;
      case 'F32': data = Float64Array.from(new Float32Array(buf)); break;
      case 'I16': data = Float64Array.from(new Int16Array(buf)); break;
      case 'BOOL': data = Float64Array.from(new Uint8Array(buf)); break;
      default: throw new Error(`unexpected dtype ${info.dtype} for ${name}`);
    }
    out.set(name, { shape: [...info.shape], dtype: info.dtype, data });
  }
  return out;
}

export function get(m: Map<string, GoldenTensor>, name: string): GoldenTensor {
  const t = m.get(name);
  if (!t) throw new Error(`golden tensor '${name}' missing`);
  return t;
}

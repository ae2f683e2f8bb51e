/**
 * Kernel benchmarks: memory read bandwidth, int4/f32 GEMV over a working set larger than L3
 * (as in real decode), GEMM at prefill shapes, and the onnxruntime-node / tfjs anchors.
 * Each returns a rate; bench/run.ts times them with the `benchmark` package and prints the table.
 */
import { Q4Matrix } from '../src/kernels/q4.js';
import type { LinearWeight } from '../src/kernels/kernels.js';
import type { WasmKernels } from '../src/kernels/wasm_kernels.js';

/** Random packed q4 matrix (codes and scales random; no quantization cost). */
export function randomQ4(outDim: number, inDim: number, seed: number): Q4Matrix {
  const G = Math.ceil(inDim / 32),
    B = Math.ceil(outDim / 4);
  const nibbles = new Uint8Array(B * G * 64);
  const words = new Uint32Array(nibbles.buffer);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[i] = s >>> 0;
  }
  const scales = new Float32Array(B * G * 4);
  for (let i = 0; i < scales.length; i++) scales[i] = 0.01 + (i % 97) * 1e-4;
  return new Q4Matrix(outDim, inDim, nibbles, scales);
}

/** A case the runner times: `fn` does one unit of work worth `units` of the reported rate. */
export interface Case {
  name: string;
  unit: 'GB/s' | 'GFLOP/s' | 'tok/s';
  units: number;
  fn: () => void | Promise<void>;
  key?: string;
}

export const GEMV_SHAPE = { outDim: 8192, inDim: 2048 }; // E2B gate/up projection
export const GEMV_COPIES = 32; // 32 × 10.5 MB of q4 weights: far beyond L3

/** Memory read bandwidth: a streaming SIMD read over 512 MiB of (touched) WASM memory. */
export function membwCases(k: WasmKernels): Case[] {
  const bytes = 512 << 20;
  const p = k.allocBytes(bytes);
  k.bytesAt(p, bytes).fill(1); // touch every page, so reads hit RAM and not the zero page
  return [1, 2].map((t) => ({
    name: `memory read bandwidth, ${t} thread${t > 1 ? 's' : ''} (WASM v128 loads)`,
    unit: 'GB/s' as const,
    units: bytes / 1e9,
    key: `membw_gbs_${t}t`,
    fn: () => {
      k.activeThreads = t;
      k.readStream(p, bytes);
    },
  }));
}

/** int4 GEMV (T = 1) cycling through GEMV_COPIES distinct weights: GB/s of codes + scales. */
export function q4GemvCases(k: WasmKernels, label: string, keyPrefix?: string): Case[] {
  const { outDim, inDim } = GEMV_SHAPE;
  const ws: LinearWeight[] = [];
  let bytes = 0;
  for (let c = 0; c < GEMV_COPIES; c++) {
    const q = randomQ4(outDim, inDim, c + 1);
    bytes += q.byteLength;
    ws.push(k.createLinear(q, outDim, inDim));
  }
  const x = new Float32Array(inDim).map((_, i) => Math.sin(i)),
    y = new Float32Array(outDim);
  return [1, 2].map((t) => ({
    name: `int4 GEMV ${outDim}x${inDim}, ${label}, ${t}t`,
    unit: 'GB/s' as const,
    units: bytes / 1e9,
    key: keyPrefix ? `${keyPrefix}_${t}t` : undefined,
    fn: () => {
      k.activeThreads = t;
      for (const w of ws) k.linear(w, x, 1, y);
    },
  }));
}

/** Prefill GEMM: T tokens through one [outDim, inDim] weight, GFLOP/s = 2·T·out·in / s. */
export function gemmCases(k: WasmKernels, format: 'q4' | 'f32', T: number, label: string, keyPrefix?: string): Case[] {
  const { outDim, inDim } = GEMV_SHAPE;
  const w =
    format === 'q4'
      ? k.createLinear(randomQ4(outDim, inDim, 7), outDim, inDim)
      : k.createLinear(
          new Float32Array(outDim * inDim).map((_, i) => Math.sin(i) * 0.1),
          outDim,
          inDim,
        );
  const x = new Float32Array(T * inDim).map((_, i) => Math.cos(i)),
    y = new Float32Array(T * outDim);
  return [1, 2].map((t) => ({
    name: `${format} GEMM T=${T} ${outDim}x${inDim}, ${label}, ${t}t`,
    unit: 'GFLOP/s' as const,
    units: (2 * T * outDim * inDim) / 1e9,
    key: keyPrefix ? `${keyPrefix}_${t}t` : undefined,
    fn: () => {
      k.activeThreads = t;
      k.linear(w, x, T, y);
    },
  }));
}

/**
 * Kernel choice in a page: the WASM SIMD kernels with worker threads when the page is
 * cross-origin isolated (COOP/COEP headers give SharedArrayBuffer), single-thread WASM when
 * not, and the plain-TS kernels if WebAssembly SIMD fails to load at all.
 */
import type { Kernels } from '../src/kernels/kernels.js';
import { TsKernels } from '../src/kernels/ts_kernels.js';
import { WasmKernels, type WasmHost, type WasmVariant } from '../src/kernels/wasm_kernels.js';

// Vite emits each .wasm as an asset and rewrites these URLs.
const WASM_URLS: Record<WasmVariant, string> = {
  simd: new URL('../build/kernels_simd.wasm', import.meta.url).href,
  relaxed: new URL('../build/kernels_relaxed.wasm', import.meta.url).href,
  simd_mt: new URL('../build/kernels_simd_mt.wasm', import.meta.url).href,
  relaxed_mt: new URL('../build/kernels_relaxed_mt.wasm', import.meta.url).href,
};

/** WasmHost for pages (and dedicated workers): fetch for the bytes, Blob-URL workers for threads. */
export function browserWasmHost(): WasmHost {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const onMainThread = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  return {
    async loadWasm(variant) {
      const r = await fetch(WASM_URLS[variant]);
      if (!r.ok) throw new Error(`kernels_${variant}.wasm: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    startWorker: isolated
      ? (source) => {
          const glue = `(${source})({ on: (f) => { self.onmessage = (e) => f(e.data); }, post: (m) => self.postMessage(m) });`;
          const url = URL.createObjectURL(new Blob([glue], { type: 'text/javascript' }));
          const w = new Worker(url);
          return {
            postMessage: (m) => w.postMessage(m),
            onMessage: (cb) => w.addEventListener('message', (e) => cb(e.data)),
            terminate: () => { w.terminate(); URL.revokeObjectURL(url); },
          };
        }
      : undefined,
    canBlock: !onMainThread, // no Atomics.wait on a page's main thread: WasmKernels spins there
    defaultThreads: isolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1,
  };
}

export type KernelChoice = 'auto' | 'wasm' | 'ts';

export interface ChosenKernels {
  kernels: Kernels;
  /** For the page: "wasm-simd ×4 threads (cross-origin isolated)", "ts", ... */
  description: string;
}

export async function chooseKernels(choice: KernelChoice = 'auto', threads?: number): Promise<ChosenKernels> {
  if (choice === 'ts') return { kernels: new TsKernels(), description: 'TypeScript kernels (float32 reference)' };
  try {
    const k = await WasmKernels.create({ host: browserWasmHost(), threads });
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    return { kernels: k, description: `${k.name}${isolated ? ' (cross-origin isolated)' : ' (not cross-origin isolated: one thread)'}` };
  } catch (e) {
    if (choice === 'wasm') throw e;
    return { kernels: new TsKernels(), description: `TypeScript kernels (WASM unavailable: ${(e as Error).message})` };
  }
}

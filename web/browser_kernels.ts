/**
 * Kernel choice in a page: the WASM SIMD kernels with worker threads when the page is
 * cross-origin isolated (COOP/COEP headers give SharedArrayBuffer), single-thread WASM when
 * not, and the plain-TS kernels if WebAssembly SIMD fails to load at all.
 */
import type { Kernels } from '../src/kernels/kernels.js';
import { TsKernels } from '../src/kernels/ts_kernels.js';
import { WasmKernels } from '../src/kernels/wasm_kernels.js';
import { browserWasmHost } from '../src/browser/wasm_host.js';

export { browserWasmHost };

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

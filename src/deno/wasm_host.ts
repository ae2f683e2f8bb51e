/**
 * Deno adapter for WasmKernels: the browser host (src/kernels/web_host.ts) pointed at build/ as a
 * file:// URL. Deno's fetch reads file: URLs (needs --allow-read), its module Web Workers start
 * from a Blob URL, and it has shared WebAssembly memory and Atomics.wait on the main thread, so
 * threads work without any flag. Runs the same build/kernels_*.wasm bytes as Node and browsers.
 */
import { WasmKernels, type WasmHost, type WasmKernelsOptions } from '../kernels/wasm_kernels.js';
import { webWasmHost } from '../kernels/web_host.js';

/** build/ at the package root, from src/deno (run as .ts) or dist/src/deno (compiled). */
export function denoBuildDir(): URL {
  return new URL(import.meta.url.includes('/dist/') ? '../../../build/' : '../../build/', import.meta.url);
}

export interface DenoHostOptions {
  /** Where kernels_*.wasm live (default: the package's build/). */
  wasmBaseUrl?: string | URL;
}

export function denoWasmHost(opts: DenoHostOptions = {}): WasmHost {
  return webWasmHost(opts.wasmBaseUrl ?? denoBuildDir());
}

/**
 * WasmKernels on Deno with build/*.wasm; options as WasmKernels.create. Call dispose() when done:
 * Deno's Web Workers have no unref(), so with threads > 1 the process does not exit before that.
 */
export function createDenoWasmKernels(opts: Omit<WasmKernelsOptions, 'host'> & DenoHostOptions = {}): Promise<WasmKernels> {
  return WasmKernels.create({ ...opts, host: denoWasmHost(opts) });
}

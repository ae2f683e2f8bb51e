/**
 * Browser adapter for WasmKernels, written for bundlers: each .wasm is named by a literal
 * `new URL('…', import.meta.url)`, the pattern Vite, Rollup, webpack 5, Parcel and esbuild
 * resolve, so a bundled app emits the kernels as assets and fetches them from its own origin.
 * The same relative path works from src/browser/ (→ build/) and from the compiled
 * dist/src/browser/ (→ dist/build/, where the build copies the .wasm files).
 * Worker threads are Blob-URL Web Workers (no worker file to resolve); they need shared
 * WebAssembly memory, i.e. a cross-origin-isolated page (COOP + COEP headers). Without it the
 * kernels run on one thread. On a page's main thread WasmKernels waits by spinning (no
 * Atomics.wait there).
 */
import { WasmKernels, type WasmHost, type WasmKernelsOptions, type WasmVariant } from '../kernels/wasm_kernels.js';
import { webWasmHost } from '../kernels/web_host.js';

/** The kernels' URLs as the bundler rewrites them (or, unbundled, next to this module). */
export function browserWasmUrls(): Record<WasmVariant, string> {
  return {
    simd: new URL('../../build/kernels_simd.wasm', import.meta.url).href,
    relaxed: new URL('../../build/kernels_relaxed.wasm', import.meta.url).href,
    simd_mt: new URL('../../build/kernels_simd_mt.wasm', import.meta.url).href,
    relaxed_mt: new URL('../../build/kernels_relaxed_mt.wasm', import.meta.url).href,
  };
}

export interface BrowserHostOptions {
  /** Where the kernels are: one URL per variant (default: browserWasmUrls()). */
  wasmUrls?: Record<WasmVariant, string>;
}

const isolated = (): boolean => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;

/** WasmHost for pages and dedicated workers: fetch for the bytes, Blob-URL workers when isolated. */
export function browserWasmHost(opts: BrowserHostOptions = {}): WasmHost {
  const urls = opts.wasmUrls ?? browserWasmUrls();
  const web = webWasmHost(urls.simd);
  const hw = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency || 1;
  return {
    ...web,
    async loadWasm(variant: WasmVariant) {
      const r = await fetch(urls[variant]);
      if (!r.ok) throw new Error(`kernels_${variant}.wasm (${urls[variant]}): HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    startWorker: isolated() ? web.startWorker : undefined,
    defaultThreads: isolated() ? Math.min(hw, 8) : 1,
  };
}

/**
 * WasmKernels in a browser (threads when the page is cross-origin isolated); options as
 * WasmKernels.create. Pass it to `Gemma3n.load(folder, { kernels })`.
 */
export function createBrowserWasmKernels(opts: Omit<WasmKernelsOptions, 'host'> & BrowserHostOptions = {}): Promise<WasmKernels> {
  return WasmKernels.create({ ...opts, host: browserWasmHost(opts) });
}

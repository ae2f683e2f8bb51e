/**
 * Browser / Deno adapter for WasmKernels: fetches build/kernels_*.wasm from `baseUrl` and starts
 * module Web Workers from a Blob. Threads need shared WebAssembly memory, i.e. a
 * cross-origin-isolated page (COOP + COEP headers) in browsers; otherwise WasmKernels runs on one
 * thread. A browser main thread may not block in Atomics.wait, so there calls wait by spinning;
 * run the engine inside a worker to avoid that. Deno uses it through src/deno/wasm_host.ts (file://
 * base URL), tested by test/deno/kernels.deno.ts (the web page has its own
 * Vite-aware host, web/browser_kernels.ts).
 */
import type { WasmHost, WasmVariant, WorkerLike } from './wasm_host.js';

export function webWasmHost(baseUrl: string | URL): WasmHost {
  const g = globalThis as unknown as { document?: unknown; navigator?: { hardwareConcurrency?: number } };
  return {
    async loadWasm(variant: WasmVariant) {
      const res = await fetch(new URL(`kernels_${variant}.wasm`, baseUrl));
      if (!res.ok) throw new Error(`webWasmHost: ${res.status} fetching kernels_${variant}.wasm`);
      return new Uint8Array(await res.arrayBuffer());
    },
    startWorker(source: string): WorkerLike {
      const glue = `(${source})({ on: (f) => { self.onmessage = (e) => f(e.data); }, post: (m) => self.postMessage(m) });`;
      const url = URL.createObjectURL(new Blob([glue], { type: 'text/javascript' }));
      const w = new Worker(url, { type: 'module' });
      return {
        postMessage: (m) => w.postMessage(m),
        onMessage: (cb) => w.addEventListener('message', (e) => cb((e as MessageEvent).data)),
        terminate: () => { w.terminate(); URL.revokeObjectURL(url); },
      };
    },
    canBlock: g.document === undefined, // workers and Deno may Atomics.wait; a page's main thread may not
    defaultThreads: g.navigator?.hardwareConcurrency ?? 1,
  };
}

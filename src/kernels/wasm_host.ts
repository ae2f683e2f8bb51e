/**
 * What a runtime gives WasmKernels: the .wasm bytes of a build variant and, optionally, workers.
 * Adapters: src/node/wasm_loader.ts (Node), src/kernels/web_host.ts (browsers, Deno),
 * web/browser_kernels.ts (the Vite page).
 */

export type WasmVariant = 'simd' | 'relaxed' | 'simd_mt' | 'relaxed_mt';

/** A started worker, as the host adapter exposes it. */
export interface WorkerLike {
  postMessage(msg: unknown): void;
  onMessage(cb: (msg: unknown) => void): void;
  terminate(): void;
}

/** What the runtime provides: the wasm bytes and, optionally, workers. */
export interface WasmHost {
  /** Bytes of build/kernels_<variant>.wasm. */
  loadWasm(variant: WasmVariant): Promise<Uint8Array | ArrayBuffer>;
  /** Starts a worker running WORKER_SOURCE's function on a port; absent means single thread. */
  startWorker?(workerFunctionSource: string): WorkerLike;
  /** False on a browser main thread (no Atomics.wait there): waiting then spins. Default true. */
  canBlock?: boolean;
  /** Called before probing Relaxed SIMD (Node 20 enables its V8 flag here). */
  enableRelaxedSimd?(): void;
  /** Default thread count when the caller does not choose one. */
  defaultThreads?: number;
}

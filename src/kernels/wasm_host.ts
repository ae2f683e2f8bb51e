/**
 * What a runtime gives WasmKernels: the .wasm bytes of a build variant and, optionally, workers.
 * Adapters, one naming scheme per runtime: src/{node,deno,browser}/wasm_host.ts each export
 * `<runtime>WasmHost` and `create<Runtime>WasmKernels` (Deno and browsers build on
 * src/kernels/web_host.ts), beside src/{node,deno}/fs_folder.ts with `<Runtime>Folder` and
 * `<Runtime>FileSource`; the Vite page picks kernels in web/browser_kernels.ts.
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

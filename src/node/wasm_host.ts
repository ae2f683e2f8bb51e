/** Node adapter for WasmKernels: reads build/kernels_*.wasm and starts worker_threads. */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { WasmHost, WasmVariant, WorkerLike } from '../kernels/wasm_host.js';
import { WasmKernels, type WasmKernelsOptions } from '../kernels/wasm_kernels.js';
import { mark } from '../util/marks.js';

/** build/ at the package root, from src/node (ts via vitest) or dist/src/node (compiled). */
function buildDir(): URL {
  const here = fileURLToPath(import.meta.url);
  const up = here.includes('/dist/') ? '../../../build/' : '../../build/';
  return new URL(up, import.meta.url);
}

export interface NodeHostOptions {
  /** Node 20 ships Relaxed SIMD behind --experimental-wasm-relaxed-simd; set it at run time (default true). */
  relaxedFlag?: boolean;
}

export function nodeWasmHost(opts: NodeHostOptions = {}): WasmHost {
  return {
    loadWasm: async (variant: WasmVariant) => {
      const bytes = await readFile(new URL(`kernels_${variant}.wasm`, buildDir()));
      mark('kernels: wasm read');
      return bytes;
    },
    startWorker(source: string): WorkerLike {
      mark('kernels: worker start');
      const glue = `const { parentPort } = require('node:worker_threads');
        (${source})({ on: (f) => parentPort.on('message', f), post: (m) => parentPort.postMessage(m) });`;
      const w = new Worker(glue, { eval: true });
      return {
        postMessage: (m) => w.postMessage(m),
        // Ref'd until the worker reports 'ready' (so create() can await it), then unref'd: idle
        // workers sleep in Atomics.wait and must not keep the process alive.
        onMessage: (cb) => {
          w.on('message', (m) => {
            cb(m);
            if (m === 'ready') {
              mark('kernels: worker ready');
              w.unref();
            }
          });
        },
        terminate: () => {
          void w.terminate();
        },
      };
    },
    canBlock: true,
    enableRelaxedSimd() {
      // V8 ships Relaxed SIMD from 11.4 (Node 22+), where the flag no longer exists.
      const [major, minor] = process.versions.v8.split('.').map(Number);
      if (opts.relaxedFlag !== false && (major < 11 || (major === 11 && minor < 4))) setFlagsFromString('--experimental-wasm-relaxed-simd');
    },
    defaultThreads: availableParallelism(),
  };
}

/** WasmKernels on Node with build/*.wasm; options as WasmKernels.create. */
export function createNodeWasmKernels(opts: Omit<WasmKernelsOptions, 'host'> & NodeHostOptions = {}): Promise<WasmKernels> {
  return WasmKernels.create({ ...opts, host: nodeWasmHost(opts) });
}

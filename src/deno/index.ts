/** Deno adapters: model folders on disk and the WASM kernels with Web Workers (dispose them to let the process exit). */
export { DenoFolder, DenoFileSource } from './fs_folder.js';
export { createDenoWasmKernels, denoWasmHost } from './wasm_host.js';

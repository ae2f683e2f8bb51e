export type { AttentionParams, Kernels, LinearWeight, WeightFormat } from './kernels.js';
export { TsKernels } from './ts_kernels.js';
export { Q4Matrix, Q4_GROUP, q4Linear, quantizeActivations } from './q4.js';
export { WasmKernels } from './wasm_kernels.js';
export type { WasmKernelsOptions } from './wasm_kernels.js';
export { relaxedSimdSupported, sharedMemorySupported } from './wasm_features.js';
export { WORKER_SOURCE } from './wasm_worker.js';
export type { WasmHost, WasmVariant, WorkerLike } from './wasm_host.js';
export { webWasmHost } from './web_host.js';

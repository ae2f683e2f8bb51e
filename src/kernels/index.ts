export type { AttentionParams, Kernels, LinearWeight, WeightFormat } from './kernels.js';
export { TsKernels } from './ts_kernels.js';
export { Q4Matrix, Q4_GROUP, q4Linear, quantizeActivations } from './q4.js';
export { WasmKernels, relaxedSimdSupported, sharedMemorySupported, WORKER_SOURCE } from './wasm_kernels.js';
export type { WasmHost, WasmKernelsOptions, WasmVariant, WorkerLike } from './wasm_kernels.js';
export { webWasmHost } from './web_host.js';

/** Node adapters: model folders on disk, the WASM kernels with worker threads, the default model. */
export { NodeFolder, NodeFileSource } from './fs_folder.js';
export { createNodeWasmKernels, nodeWasmHost } from './wasm_host.js';
export { ensureDefaultModel, defaultModelDir, type DefaultModelOptions } from './default_model.js';
export { cacheDir, type CacheDirOptions } from './cache_dir.js';

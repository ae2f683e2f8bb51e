/** Browser adapters: the WASM kernels (bundler-resolved .wasm URLs, Web Worker threads), model folders at a URL. */
export { browserWasmHost, browserWasmUrls, createBrowserWasmKernels, type BrowserHostOptions } from './wasm_host.js';
export { HttpFolder, cacheApiStore, type ByteStore, type HttpFolderOptions, type HttpProgress } from './http_folder.js';

/** Browser adapters: the WASM kernels (bundler-resolved .wasm URLs, Web Worker threads). */
export { browserWasmHost, browserWasmUrls, createBrowserWasmKernels, type BrowserHostOptions } from './wasm_host.js';

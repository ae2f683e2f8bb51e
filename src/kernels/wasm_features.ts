/** Feature probes: which WASM build this runtime can run (Relaxed SIMD, shared memory). */

// A minimal module using i16x8.relaxed_dot_i8x16_i7x16_s: p() returns lane 0 of dot(1s, 2s) = 4.
const RELAXED_PROBE = new Uint8Array([
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7f, 3, 2, 1, 0, 7, 5, 1, 1, 0x70, 0, 0,
  0x0a, 0x2e, 1, 0x2c, 0, 0xfd, 0x0c, ...new Array<number>(16).fill(1), 0xfd, 0x0c, ...new Array<number>(16).fill(2),
  0xfd, 0x92, 0x02, 0xfd, 0x18, 0, 0x0b,
]);

/** True if this runtime compiles Relaxed SIMD and the probe computes the right dot product. */
export function relaxedSimdSupported(): boolean {
  try {
    if (!WebAssembly.validate(RELAXED_PROBE)) return false;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE));
    return (inst.exports.p as () => number)() === 4;
  } catch {
    return false;
  }
}

/** True if WebAssembly shared memory (threads) is available here. */
export function sharedMemorySupported(): boolean {
  try {
    if (typeof SharedArrayBuffer === 'undefined') return false;
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

import type { FloatAllocator } from './kv_cache.js';

/**
 * Reusable work buffers for the decoder. A decode step asks for the same sizes every token,
 * so after the first step it allocates (and zeroes) no intermediate arrays.
 *
 * A buffer is lent until the next `take` of the same name: take only buffers that do not
 * outlive the synchronous call that takes them (the layer loop has no awaits), and give
 * buffers that are alive at the same time different names. Contents are not cleared.
 *
 * With an allocator that places floats in the kernels' own memory (WasmKernels.allocF32), the
 * float buffers live there, so the row-wise kernels, GELU and attention work on them in place
 * instead of copying every input in and every output out. Such a buffer only grows (a decode
 * step after a prefill gets a view of the prefill's buffer): freeing and zeroing ~40 MB of them
 * each time the step size changes would cost more than it keeps.
 */
export class Scratch {
  constructor(private readonly memory?: FloatAllocator) {}

  /** Per name, the allocator's buffer and the view last handed out. */
  private readonly resident = new Map<string, { base: Float32Array; view: Float32Array }>();

  private readonly buffers = new Map<string, Float32Array>();
  private readonly buffers64 = new Map<string, Float64Array>();

  private readonly buffersI32 = new Map<string, Int32Array>();

  /** take, for an Int32Array. */
  takeI32(name: string, n: number): Int32Array {
    let b = this.buffersI32.get(name);
    if (b === undefined || b.length !== n) {
      b = new Int32Array(n);
      this.buffersI32.set(name, b);
    }
    return b;
  }

  /** take, for a Float64Array. */
  take64(name: string, n: number): Float64Array {
    let b = this.buffers64.get(name);
    if (b === undefined || b.length !== n) {
      b = new Float64Array(n);
      this.buffers64.set(name, b);
    }
    return b;
  }

  /** A Float32Array of exactly `n` values for `name`; reallocated only when n changes. */
  take(name: string, n: number): Float32Array {
    if (this.memory?.allocF32) {
      const r = this.resident.get(name);
      if (r && r.view.length === n) return r.view;
      if (r && r.base.length >= n) return (r.view = r.base.subarray(0, n));
      if (r) this.memory.freeF32?.(r.base);
      const base = this.memory.allocF32(n);
      this.resident.set(name, { base, view: base });
      return base;
    }
    let b = this.buffers.get(name);
    if (b === undefined || b.length !== n) {
      b = new Float32Array(n);
      this.buffers.set(name, b);
    }
    return b;
  }
}

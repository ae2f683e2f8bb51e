/**
 * Reusable work buffers for the decoder. A decode step asks for the same sizes every token,
 * so after the first step it allocates (and zeroes) no intermediate arrays.
 *
 * A buffer is lent until the next `take` of the same name: take only buffers that do not
 * outlive the synchronous call that takes them (the layer loop has no awaits), and give
 * buffers that are alive at the same time different names. Contents are not cleared.
 */
export class Scratch {
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
    let b = this.buffers.get(name);
    if (b === undefined || b.length !== n) {
      b = new Float32Array(n);
      this.buffers.set(name, b);
    }
    return b;
  }
}

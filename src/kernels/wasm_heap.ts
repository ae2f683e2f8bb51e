/**
 * The allocator of WasmKernels' memory: bump allocation with a first-fit, coalescing free list,
 * 64-byte aligned, over memory.grow (wasm32: at most 4 GiB). Weights, the KV cache and the
 * per-call scratch all live here; the kernel module's own static data ends at `base`.
 */

/** n rounded up to a multiple of 64 (a cache line; every block starts on one). */
export function align(n: number): number {
  return Math.ceil(n / 64) * 64;
}

export class Heap {
  private top: number;
  private free: { p: number; n: number }[] = [];
  readonly sizes = new Map<number, number>();
  constructor(private memory: WebAssembly.Memory, base: number) {
    this.top = align(base);
  }
  get used(): number {
    return this.top - this.free.reduce((s, f) => s + f.n, 0);
  }
  alloc(bytes: number): number {
    const n = align(Math.max(bytes, 64));
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.n >= n) {
        const p = f.p;
        if (f.n === n) this.free.splice(i, 1);
        else { f.p += n; f.n -= n; }
        this.sizes.set(p, n);
        return p;
      }
    }
    const p = this.top, end = p + n;
    if (end > 2 ** 32) throw new RangeError(`WasmKernels: out of wasm32 memory (${(end / 2 ** 30).toFixed(2)} GiB requested)`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / 65536);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new RangeError(`WasmKernels: cannot grow wasm memory to ${(end / 2 ** 20).toFixed(0)} MiB: ${(e as Error).message}`);
      }
    }
    this.top = end;
    this.sizes.set(p, n);
    return p;
  }
  release(p: number): void {
    const n = this.sizes.get(p);
    if (n === undefined) throw new Error(`WasmKernels: double free or foreign pointer ${p}`);
    this.sizes.delete(p);
    if (p + n === this.top) {
      this.top = p;
      // give back a free block that now touches the top
      const last = this.free[this.free.length - 1];
      if (last && last.p + last.n === this.top) { this.top = last.p; this.free.pop(); }
      return;
    }
    let i = 0;
    while (i < this.free.length && this.free[i].p < p) i++;
    this.free.splice(i, 0, { p, n });
    // coalesce with neighbours
    if (i + 1 < this.free.length && p + n === this.free[i + 1].p) { this.free[i].n += this.free[i + 1].n; this.free.splice(i + 1, 1); }
    if (i > 0 && this.free[i - 1].p + this.free[i - 1].n === p) { this.free[i - 1].n += this.free[i].n; this.free.splice(i, 1); }
  }
}

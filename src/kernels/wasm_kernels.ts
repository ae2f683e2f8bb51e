/**
 * WasmKernels: the Kernels interface on the AssemblyScript kernels in assembly/ (WASM SIMD).
 *
 * Runtime-neutral: the .wasm bytes and (optionally) worker threads come from a small host
 * adapter (src/node/wasm_loader.ts for Node; a browser/Deno adapter supplies the same
 * `WasmHost`). Weights live in WASM memory, placed by a bump + free-list allocator over
 * memory.grow (wasm32: at most 4 GiB; an E2B decoder in q4 is ~1.5 GB). Inputs and outputs are
 * copied through a scratch region per call, so callers keep ordinary Float32Arrays.
 *
 * Threads: with SharedArrayBuffer and a host that can start workers, the memory is shared and
 * each linear/attention call is split by output rows (or heads) between the calling thread and
 * `threads - 1` workers, which spin briefly and then sleep in Atomics.wait on a job descriptor
 * in WASM memory. The calls stay synchronous: the caller does its share, then waits for the
 * workers (Atomics.wait where allowed, a spin loop on a browser main thread).
 */
import type { AttentionParams, Kernels, LinearWeight, WeightFormat } from './kernels.js';
import { Q4Matrix, Q4_GROUP } from './q4.js';

export type WasmVariant = 'simd' | 'relaxed' | 'simd_mt' | 'relaxed_mt';

/** A started worker, as the host adapter exposes it. */
export interface WorkerLike {
  postMessage(msg: unknown): void;
  onMessage(cb: (msg: unknown) => void): void;
  terminate(): void;
}

/** What the runtime provides: the wasm bytes and, optionally, workers. */
export interface WasmHost {
  /** Bytes of build/kernels_<variant>.wasm. */
  loadWasm(variant: WasmVariant): Promise<Uint8Array | ArrayBuffer>;
  /** Starts a worker running WORKER_SOURCE's function on a port; absent means single thread. */
  startWorker?(workerFunctionSource: string): WorkerLike;
  /** False on a browser main thread (no Atomics.wait there): waiting then spins. Default true. */
  canBlock?: boolean;
  /** Called before probing Relaxed SIMD (Node 20 enables its V8 flag here). */
  enableRelaxedSimd?(): void;
  /** Default thread count when the caller does not choose one. */
  defaultThreads?: number;
}

export interface WasmKernelsOptions {
  host: WasmHost;
  /** Threads including the caller's (default host.defaultThreads ?? 1). */
  threads?: number;
  /** 'auto' (default): Relaxed SIMD where the probe module compiles and computes correctly. */
  relaxed?: 'auto' | boolean;
  /** Cap on the per-call scratch for activations (default 64 MiB); longer inputs go in token chunks. */
  maxScratchBytes?: number;
  /** Calls with fewer multiply-adds than this stay on the calling thread (default 256 K; tests use 0). */
  smallJobMacs?: number;
}

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

// Job descriptor words (assembly/index.ts): [0] job id [1] chunks done [2] op [3] threads
// [4] scratch base [5] scratch bytes per thread [6..29] args [30..31] claim word (i64)
// [32 + tid] per-thread result.
const JOB_BYTES = 256;
const MAX_THREADS = 32;
const MAX_MANY = 6; // weights in one q4 job: 6 header words + 3 per weight fit the 24 argument words
const Q4_GROUP_BYTES = 80;
const Q4_TOUCH_SLACK = 2048 + 320; // assembly/matmul_q4.ts: PF + one iteration's lines // one group of a 4-row block in WASM memory: 64 code bytes + 4 f32 scales
const OP_F32_GEMM = 1, OP_Q4_GEMM = 2, OP_ATTENTION = 3, OP_READ = 4, OP_QUIT = -1;
const SMALL_JOB = 1 << 18; // multiply-adds below which a call stays on one thread (Laurel); with spinning workers a hand-off costs a few µs
const SPIN = 20_000; // caller's busy-wait iterations for the workers to finish before it sleeps
// Workers busy-wait this many iterations (~1-2 ms) for the next job before sleeping: a decode
// step issues ~300 calls with up to a millisecond of JavaScript between them, and waking a
// sleeping worker (futex) costs ~40 µs per call, measured (bench/decode_profile.ts). On 2 cores
// with 2 threads the spinning core would otherwise be idle.
const WORKER_SPIN = 400_000;

/** The worker's whole program; adapters call it with a port ({ on, post }). */
export const WORKER_SOURCE = `function gemma3nKernelWorker(port) {
  port.on(async (msg) => {
    const { module, memory, job, tid, spin } = msg;
    const inst = await WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
    const run = inst.exports.run;
    const ctl = new Int32Array(memory.buffer, job, 64);
    let seen = Atomics.load(ctl, 0);
    port.post('ready');
    for (;;) {
      let id, n = 0;
      while ((id = Atomics.load(ctl, 0)) === seen) { if (++n > spin) Atomics.wait(ctl, 0, seen); }
      seen = id;
      if (Atomics.load(ctl, 2) === -1) break;
      run(job, tid, id);
      Atomics.notify(ctl, 1);
    }
  });
}`;

interface KernelExports {
  run(job: number, tid: number, id: number): number;
  q4_quantize_act(x: number, T: number, inDim: number, G: number, xq: number, xs: number, xc: number): void;
  q4_xb(): number;
  q4_touch_slack(): number;
  heap_base(): number;
  gelu_mul(a: number, b: number, n: number): void;
  softcap(x: number, n: number, cap: number): void;
  attention_scratch_floats(D: number, group: number): number;
}

/** Bump allocator with a first-fit, coalescing free list, 64-byte aligned, over memory.grow. */
class Heap {
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

function align(n: number): number {
  return Math.ceil(n / 64) * 64;
}

class WasmLinear implements LinearWeight {
  released = false;
  constructor(
    readonly format: WeightFormat,
    readonly outDim: number,
    readonly inDim: number,
    /** f32: the [outDim, inDim] matrix; q4: packed codes and scales, interleaved per group. */
    readonly ptr: number,
    readonly byteLength: number,
  ) {}
}

export class WasmKernels implements Kernels {
  readonly name: string;
  private heap: Heap;
  private job: number;
  private ctl: Int32Array;
  private claimWord!: BigInt64Array;
  /** Every buffer object memory.buffer has returned: a Float32Array on one of them lives in WASM memory. */
  private buffers = new WeakSet<ArrayBufferLike>();
  private jobId = 0;
  private scratchPtr = 0;
  private scratchBytes = 0;
  private u8!: Uint8Array;
  private f32!: Float32Array;
  private readonly xb: number;
  /** Threads the next calls use (1..threads); the bench compares 1 and 2 on one instance. */
  activeThreads: number;
  /** See WasmKernelsOptions.smallJobMacs. */
  smallJob: number;

  private constructor(
    private exports: KernelExports,
    readonly memory: WebAssembly.Memory,
    readonly threads: number,
    readonly relaxed: boolean,
    private workers: WorkerLike[],
    private canBlock: boolean,
    private maxScratch: number,
    private shared: boolean,
  ) {
    this.name = `wasm-${relaxed ? 'relaxed' : 'simd128'}-${threads}t`;
    this.heap = new Heap(memory, exports.heap_base());
    this.job = this.heap.alloc(JOB_BYTES);
    this.ctl = new Int32Array(memory.buffer, this.job, JOB_BYTES / 4);
    this.xb = exports.q4_xb();
    this.activeThreads = threads;
    this.smallJob = SMALL_JOB;
    this.refreshViews();
  }

  static async create(opts: WasmKernelsOptions): Promise<WasmKernels> {
    const { host } = opts;
    let relaxed = false;
    if (opts.relaxed !== false) {
      host.enableRelaxedSimd?.();
      relaxed = relaxedSimdSupported();
      if (opts.relaxed === true && !relaxed) throw new Error('WasmKernels: Relaxed SIMD requested but not supported by this runtime');
    }
    let threads = Math.max(1, Math.min(MAX_THREADS, Math.floor(opts.threads ?? host.defaultThreads ?? 1)));
    const shared = sharedMemorySupported() && (threads === 1 || host.startWorker !== undefined);
    if (!shared || !host.startWorker) threads = 1;
    const variant: WasmVariant = `${relaxed ? 'relaxed' : 'simd'}${shared ? '_mt' : ''}` as WasmVariant;
    const module = await WebAssembly.compile(await host.loadWasm(variant) as BufferSource);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
    const instance = await WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
    const k = new WasmKernels(instance.exports as unknown as KernelExports, memory, threads, relaxed, [], host.canBlock ?? true, opts.maxScratchBytes ?? 64 << 20, shared);
    for (let tid = 1; tid < threads; tid++) {
      const w = host.startWorker!(WORKER_SOURCE);
      const ready = new Promise<void>((resolve) => w.onMessage((m) => { if (m === 'ready') resolve(); }));
      w.postMessage({ module, memory, job: k.job, tid, spin: WORKER_SPIN });
      await ready;
      k.workers.push(w);
    }
    if (opts.smallJobMacs !== undefined) k.smallJob = opts.smallJobMacs;
    return k;
  }

  /** Stops the workers; the instance must not be used afterwards. */
  dispose(): void {
    if (this.workers.length) {
      this.view();
      Atomics.store(this.ctl, 2, OP_QUIT);
      Atomics.store(this.ctl, 0, (this.jobId = (this.jobId + 1) | 0));
      Atomics.notify(this.ctl, 0);
      for (const w of this.workers) w.terminate();
      this.workers = [];
    }
  }

  /** Bytes of WASM memory in use (weights + scratch). */
  get heapBytes(): number {
    return this.heap.used;
  }

  // Views over memory.buffer: re-created whenever memory.grow replaced (or extended) the buffer.
  private refreshViews(): void {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    this.u8 = new Uint8Array(buf);
    this.f32 = new Float32Array(buf);
    this.ctl = new Int32Array(buf, this.job, JOB_BYTES / 4);
    this.claimWord = new BigInt64Array(buf, this.job + 120, 1);
  }
  private view(): void {
    if (this.u8.byteLength !== this.memory.buffer.byteLength) this.refreshViews();
  }

  private alloc(bytes: number): number {
    const p = this.heap.alloc(bytes);
    this.view();
    return p;
  }

  /** The per-call scratch region, grown (never shrunk) to at least `bytes`. */
  private scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchBytes) this.heap.release(this.scratchPtr);
      this.scratchBytes = align(Math.max(bytes, this.scratchBytes * 1.5));
      this.scratchPtr = this.alloc(this.scratchBytes);
    }
    return this.scratchPtr;
  }

  createLinear(w: Float32Array | Q4Matrix, outDim: number, inDim: number, format: WeightFormat = 'f32'): LinearWeight {
    if (w instanceof Q4Matrix) {
      if (w.outDim !== outDim || w.inDim !== inDim) throw new Error(`createLinear: Q4Matrix is [${w.outDim}, ${w.inDim}], expected [${outDim}, ${inDim}]`);
      return this.uploadQ4(w);
    }
    if (w.length !== outDim * inDim) throw new Error(`createLinear: ${w.length} values for [${outDim}, ${inDim}]`);
    if (format === 'q4') return this.uploadQ4(Q4Matrix.quantize(w, outDim, inDim));
    if (format !== 'f32') throw new Error(`WasmKernels: weight format '${format}' is not supported`);
    const bytes = outDim * inDim * 4;
    const p = this.alloc(bytes);
    this.f32.set(w, p / 4);
    return new WasmLinear('f32', outDim, inDim, p, bytes);
  }

  /**
   * Uploads a packed int4 matrix with each group's codes and scales side by side
   * ([blocks][groups][64 code bytes + 4 f32 scales], assembly/matmul_q4.ts), so a GEMV reads
   * one sequential stream.
   */
  private uploadQ4(q: Q4Matrix): WasmLinear {
    const n = q.blocks * q.groups;
    const p = this.alloc(n * Q4_GROUP_BYTES + this.exports.q4_touch_slack()); // the GEMV reads ahead of the rows it uses
    // 32-bit words: 16 of codes then 4 of scales per group (a plain loop: ~10× faster than a
    // subarray + set per group, which took seconds for an E2B model)
    const dst = new Uint32Array(this.memory.buffer, p, n * 20);
    const codes = q.nibbles.byteOffset % 4 === 0 ? new Uint32Array(q.nibbles.buffer, q.nibbles.byteOffset, n * 16) : new Uint32Array(q.nibbles.slice().buffer);
    const scales = new Uint32Array(q.scales.buffer, q.scales.byteOffset, n * 4);
    for (let i = 0, d = 0, c = 0, s = 0; i < n; i++) {
      for (let j = 0; j < 16; j++) dst[d++] = codes[c++];
      dst[d++] = scales[s++]; dst[d++] = scales[s++]; dst[d++] = scales[s++]; dst[d++] = scales[s++];
    }
    return new WasmLinear('q4', q.outDim, q.inDim, p, q.byteLength);
  }

  /** The packed int4 matrix of a q4 weight, copied out of WASM memory (for saving). */
  exportQ4(weight: LinearWeight): Q4Matrix {
    const w = this.own(weight);
    if (w.format !== 'q4') throw new Error('exportQ4: not a q4 weight');
    const G = Math.ceil(w.inDim / Q4_GROUP), B = Math.ceil(w.outDim / 4), n = B * G;
    this.view();
    const nibbles = new Uint8Array(n * 64), scales = new Float32Array(n * 4);
    const src = new Uint32Array(this.memory.buffer, w.ptr, n * 20), codes = new Uint32Array(nibbles.buffer), sc = new Uint32Array(scales.buffer);
    for (let i = 0, d = 0, c = 0, s = 0; i < n; i++) {
      for (let j = 0; j < 16; j++) codes[c++] = src[d++];
      sc[s++] = src[d++]; sc[s++] = src[d++]; sc[s++] = src[d++]; sc[s++] = src[d++];
    }
    return new Q4Matrix(w.outDim, w.inDim, nibbles, scales);
  }

  release(weight: LinearWeight): void {
    const w = this.own(weight);
    if (w.released) return;
    w.released = true;
    this.heap.release(w.ptr);
  }

  private own(weight: LinearWeight): WasmLinear {
    if (!(weight instanceof WasmLinear)) throw new Error('WasmKernels: weight was not created by this backend');
    if (weight.released) throw new Error('WasmKernels: weight used after release()');
    return weight;
  }

  linear(weight: LinearWeight, x: Float32Array, T: number, y: Float32Array): void {
    this.linearMany([weight], x, T, [y]);
  }

  /**
   * ys[i] = x · W_iᵀ. q4 weights sharing inDim run as one job: x is quantized once and the
   * threads claim chunks of the weights' row blocks laid end to end (at most MAX_MANY weights).
   */
  linearMany(weights: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]): void {
    if (weights.length !== ys.length) throw new Error(`linearMany: ${weights.length} weights but ${ys.length} outputs`);
    const ws = weights.map((w) => this.own(w));
    if (ws.length === 0) return;
    const inDim = ws[0].inDim;
    ws.forEach((w, i) => {
      if (w.inDim !== inDim) throw new Error(`linearMany: weight ${i} has inDim ${w.inDim}, weight 0 has ${inDim}`);
      if (ys[i].length < T * w.outDim) throw new Error(`linear: y has ${ys[i].length} (need ${T * w.outDim})`);
    });
    if (x.length < T * inDim) throw new Error(`linear: x has ${x.length} (need ${T * inDim})`);
    if (ws.length > 1 && (ws.length > MAX_MANY || ws.some((w) => w.format !== 'q4'))) {
      ws.forEach((w, i) => this.linearMany([w], x, T, [ys[i]]));
      return;
    }
    const G = Math.ceil(inDim / Q4_GROUP);
    const outTotal = ws.reduce((s, w) => s + align(w.outDim * 4) / 4, 0);
    // Bytes per token of scratch; tokens go in chunks so the LM head (262144 outputs) stays bounded.
    const perT = (inDim + outTotal) * 4 + (ws[0].format === 'q4' ? G * (this.xb + 8) : 0);
    const chunk = Math.max(1, Math.min(T, Math.floor(this.maxScratch / perT)));
    const base = this.scratch(chunk * perT + 256 * (ws.length + 1));
    for (let t0 = 0; t0 < T; t0 += chunk) {
      const n = Math.min(chunk, T - t0);
      const xp = base;
      const yps: number[] = [];
      let next = align(xp + n * inDim * 4);
      for (const w of ws) { yps.push(next); next = align(next + n * w.outDim * 4); }
      this.view();
      this.f32.set(x.subarray(t0 * inDim, (t0 + n) * inDim), xp / 4);
      const macs = n * inDim * ws.reduce((s, w) => s + w.outDim, 0);
      if (ws[0].format === 'f32') {
        const w = ws[0];
        this.dispatch(OP_F32_GEMM, [w.ptr, xp, yps[0], n, w.outDim, inDim], 0, 0, macs);
      } else {
        const xq = next, xs = align(xq + n * G * this.xb), xc = align(xs + n * G * 4);
        this.exports.q4_quantize_act(xp, n, inDim, G, xq, xs, xc);
        const args = [G, xq, xs, xc, n, ws.length];
        ws.forEach((w, i) => args.push(w.ptr, yps[i], w.outDim));
        this.dispatch(OP_Q4_GEMM, args, 0, 0, macs);
      }
      this.view();
      ws.forEach((w, i) => ys[i].set(this.f32.subarray(yps[i] / 4, yps[i] / 4 + n * w.outDim), t0 * w.outDim));
    }
  }

  geluMul(a: Float32Array, b: Float32Array, n: number): void {
    if (a.length < n || b.length < n) throw new Error(`geluMul: a has ${a.length}, b has ${b.length} values (need ${n})`);
    const ap = this.scratch(align(n * 4) * 2), bp = ap + align(n * 4);
    this.view();
    this.f32.set(a.subarray(0, n), ap / 4);
    this.f32.set(b.subarray(0, n), bp / 4);
    this.exports.gelu_mul(ap, bp, n);
    a.set(this.f32.subarray(ap / 4, ap / 4 + n));
  }

  softcap(x: Float32Array, n: number, cap: number): void {
    if (x.length < n) throw new Error(`softcap: x has ${x.length} values (need ${n})`);
    const p = this.scratch(n * 4);
    this.view();
    this.f32.set(x.subarray(0, n), p / 4);
    this.exports.softcap(p, n, cap);
    x.set(this.f32.subarray(p / 4, p / 4 + n));
  }

  attention(p: AttentionParams): void {
    const { T, S, numHeads: H, numKvHeads: KVH, headDim: D } = p;
    if (H % KVH !== 0) throw new Error(`attention: ${H} heads not a multiple of ${KVH} kv heads`);
    const qn = T * H * D, kn = S * KVH * D;
    if (p.q.length < qn || p.k.length < kn || p.v.length < kn || p.out.length < qn) throw new Error('attention: q/k/v/out shorter than T, S and the head shapes say');
    const perThread = align(this.exports.attention_scratch_floats(D, H / KVH) * 4);
    // A KV cache allocated with allocF32 is used in place; otherwise K and V are copied in.
    const kIn = this.inMemory(p.k), vIn = this.inMemory(p.v);
    const qp = this.scratch(align(qn * 4) * 2 + (kIn ? 0 : align(kn * 4)) + (vIn ? 0 : align(kn * 4)) + perThread * this.threads);
    let next = qp + align(qn * 4);
    const op = next; next += align(qn * 4);
    const sp = next; next += perThread * this.threads;
    const kp = kIn ? p.k.byteOffset : next; if (!kIn) next += align(kn * 4);
    const vp = vIn ? p.v.byteOffset : next;
    this.view();
    this.f32.set(p.q.subarray(0, qn), qp / 4);
    if (!kIn) this.f32.set(p.k.subarray(0, kn), kp / 4);
    if (!vIn) this.f32.set(p.v.subarray(0, kn), vp / 4);
    const scaleBits = new Int32Array(new Float32Array([p.scale]).buffer)[0];
    this.dispatch(OP_ATTENTION, [qp, kp, vp, op, T, S, H, KVH, D, p.qPos0, p.kPos0, p.window, scaleBits], sp, perThread, 2 * T * H * S * D);
    this.view();
    p.out.set(this.f32.subarray(op / 4, op / 4 + qn));
  }

  private inMemory(a: Float32Array): boolean {
    return this.buffers.has(a.buffer);
  }

  /**
   * A Float32Array of n zeros inside WASM memory (e.g. a KV cache, which attention then reads in
   * place instead of copying). Only with shared memory, where views survive memory.grow;
   * otherwise an ordinary Float32Array. Free with freeF32.
   */
  allocF32(n: number): Float32Array {
    if (!this.shared) return new Float32Array(n);
    const p = this.alloc(n * 4);
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    const v = new Float32Array(buf, p, n);
    v.fill(0);
    // A view dropped without freeF32 (a KV cache nobody released) gives its block back when
    // the garbage collector reclaims it.
    this.unfreed.register(v, p, v);
    return v;
  }
  freeF32(a: Float32Array): void {
    if (!this.inMemory(a)) return;
    this.unfreed.unregister(a);
    this.heap.release(a.byteOffset);
  }
  private readonly unfreed = new FinalizationRegistry<number>((p) => this.heap.release(p));

  /**
   * Streams `bytes` of WASM memory through all threads (bench: memory read bandwidth).
   * Returns a checksum so the reads cannot be skipped.
   */
  readStream(ptr: number, bytes: number): number {
    this.dispatch(OP_READ, [ptr, bytes - (bytes % (1 << 20))]);
    return this.ctl[32];
  }

  /** Raw allocation in WASM memory (bench and tests); free with freeBytes. */
  allocBytes(bytes: number): number {
    return this.alloc(bytes);
  }
  freeBytes(ptr: number): void {
    this.heap.release(ptr);
  }
  /** A fresh Uint8Array view of [ptr, ptr+bytes) (invalid after the next allocation on unshared memory). */
  bytesAt(ptr: number, bytes: number): Uint8Array {
    this.view();
    return this.u8.subarray(ptr, ptr + bytes);
  }

  /**
   * Writes the job descriptor and runs it: the caller claims chunks like any worker, then waits
   * until every chunk is done (chunks a sleeping worker never claimed are simply taken here).
   */
  private dispatch(op: number, args: number[], scratchBase = 0, scratchStride = 0, work = Infinity): void {
    this.view();
    // Small jobs (Laurel, PLE projections) run here alone: waking a worker costs more than it saves.
    const c = this.ctl, nt = work < this.smallJob ? 1 : Math.max(1, Math.min(this.threads, this.activeThreads));
    const id = (this.jobId = (this.jobId + 1) | 0);
    c[2] = op;
    c[3] = nt;
    c[4] = scratchBase;
    c[5] = scratchStride;
    for (let i = 0; i < args.length; i++) c[6 + i] = args[i];
    if (!this.shared) {
      c[1] = 0;
      c[30] = 0;
      this.exports.run(this.job, 0, id);
      return;
    }
    Atomics.store(c, 1, 0);
    Atomics.store(this.claimWord, 0, BigInt(id) << 32n); // opens the job's chunks
    if (nt > 1) {
      Atomics.store(c, 0, id); // wake the workers
      Atomics.notify(c, 0);
    }
    const chunks = this.exports.run(this.job, 0, id);
    let n = 0, done: number;
    while ((done = Atomics.load(c, 1)) < chunks) {
      if (++n > SPIN && this.canBlock) Atomics.wait(c, 1, done, 1);
    }
  }

}

/**
 * WasmKernels: the Kernels interface on the AssemblyScript kernels in assembly/ (WASM SIMD).
 *
 * Runtime-neutral: the .wasm bytes and (optionally) worker threads come from a small host
 * adapter (`WasmHost`, wasm_host.ts; the build variant is chosen by wasm_features.ts). Weights
 * live in WASM memory, placed by the allocator of wasm_heap.ts (wasm32: at most 4 GiB; an E2B
 * decoder in q4 is ~1.5 GB). Inputs and outputs are copied through a scratch region per call,
 * so callers keep ordinary Float32Arrays.
 *
 * Threads: with SharedArrayBuffer and a host that can start workers, the memory is shared and
 * each linear/attention call is split by output rows (or heads) between the calling thread and
 * `threads - 1` workers, which spin briefly and then sleep in Atomics.wait on a job descriptor
 * in WASM memory. The calls stay synchronous: the caller does its share, then waits for the
 * workers (Atomics.wait where allowed, a spin loop on a browser main thread). The descriptor and
 * its protocol: wasm_job_layout.ts, wasm_job.ts; the workers' program: wasm_worker.ts.
 */
import type { AttentionParams, Kernels, LinearWeight, Q4Reservation, RowOps, WeightFormat } from './kernels.js';
import { FAST_EXP_TABLE } from './fast_math.js';
import { Q4Matrix, Q4_GROUP } from './q4.js';
import { Q8Matrix } from './q8.js';
import { relaxedSimdSupported, sharedMemorySupported } from './wasm_features.js';
import { Heap, align } from './wasm_heap.js';
import type { WasmHost, WasmVariant, WorkerLike } from './wasm_host.js';
import { WasmJobs } from './wasm_job.js';
import { JOB_BYTES, JOB_MAX_THREADS, OP_ATTENTION, OP_F32_GEMM, OP_Q4_GEMM, OP_Q4_ROWS, OP_Q8_GEMM, OP_READ, OP_ROW_OPS } from './wasm_job_layout.js';
import { OP_DW_CONV2D, OP_MQA, OP_RMS_NORM_ACT } from './wasm_job_layout.js';
import { checkDepthwise, checkMqa, checkNorm, type DepthwiseConv2dParams, type MultiQueryAttentionParams, type RmsNormActParams } from './tower_ops.js';
import { WORKER_SOURCE, WORKER_SPIN } from './wasm_worker.js';

export type { WasmHost, WasmVariant, WorkerLike } from './wasm_host.js';
export { relaxedSimdSupported, sharedMemorySupported } from './wasm_features.js';
export { WORKER_SOURCE } from './wasm_worker.js';

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

const MAX_MANY = 6; // weights in one q4 job: 6 header words + 3 per weight fit the 24 argument words
const Q4_GROUP_BYTES = 80; // one group of a 4-row block in WASM memory: 64 code bytes + 4 f32 scales
const SMALL_JOB = 1 << 18;
/**
 * Tokens from which a q4 call takes the batched GEMM (Relaxed SIMD build; below, the GEMV per
 * token). At 2 tokens the batched path runs fewer instructions (0.43 against 0.47 per
 * multiply-add); one linear streamed alone from memory ran ~5% slower with it (it writes and
 * rereads its unpacked codes), but a whole decoder step of 2 sequences ran ~8% faster
 * (bench/batch_profile.ts --batches=1,2, two runs each, 2-core Xeon: 139/138 against 152/147 ms),
 * so 2 tokens take it too; at 3 ~4% faster, at 8 ~21% (linears alone, 2 threads).
 */
const Q4_BATCH_MIN_T = 2;
// The row-wise kernels as jobs (assembly/row_jobs.ts): kernel ids and elements per unit of the
// element-wise ones; a row job goes to the threads from SMALL_JOB / ROW_WORK elements (32 K: a
// prefill's rows, not a decode step's).
const ROW_RMS_NORM = 0, ROW_ALTUP_ROUTER = 1, ROW_ALTUP_MIX4 = 2, ROW_ALTUP_CORRECT = 3, ROW_GELU_MUL = 4, ROW_ADD_REPEATED = 5, ROW_SUM3_SCALED = 6, ROW_SCALE_COLUMNS = 7, ROW_GAUSSIAN_GELU = 8, ROW_ROPE = 9, ROW_SOFTCAP = 10;
const ROW_BLOCK = 4096, ROW_WORK = 8;
const wordsF64 = new Float64Array(1), wordsF32 = new Float32Array(wordsF64.buffer, 0, 1), words = new Int32Array(wordsF64.buffer);
/** A float64 as two job words (low, high); a float32's bits. */
const f64Words = (x: number): [number, number] => { wordsF64[0] = x; return [words[0], words[1]]; };
const f32Bits = (x: number): number => { wordsF32[0] = x; return words[0]; }; // multiply-adds below which a call stays on one thread (Laurel); with spinning workers a hand-off costs a few µs

interface KernelExports {
  run(job: number, tid: number, id: number): number;
  q4_quantize_act(x: number, T: number, inDim: number, G: number, xq: number, xs: number, xc: number): void;
  q4_xb(): number;
  q4_fused_max_t(): number;
  q4_touch_slack(): number;
  q4_gemm_scratch_bytes(G: number): number;
  q4_tokens_bytes(G: number): number;
  q4_tokens_batched(xq: number, xs: number, xc: number, T: number, G: number, dst: number): void;
  heap_base(): number;
  gelu_mul(a: number, b: number, n: number): void;
  softcap(x: number, n: number, cap: number): void;
  attention_scratch_floats(D: number, group: number): number;
  rms_norm(x: number, w: number, rows: number, dim: number, eps: number, out: number): void;
  altup_router(x: number, normW: number, routerW: number, T: number, H: number, A: number, eps: number, scale: number, normed: number, dots: number): void;
  altup_mix4(c: number, x: number, out: number, T: number, H: number): void;
  altup_correct(pred: number, activated: number, active: number, coef: number, out: number, T: number, H: number, A: number): void;
  add_repeated(x: number, y: number, n: number, times: number): void;
  sum3_scaled(a: number, b: number, c: number, s: number, out: number, n: number): void;
  scale_columns(x: number, w: number, out: number, rows: number, dim: number): void;
  gaussian_gelu_mul_rows(gate: number, up: number, dim: number, k: number, table: number, counts: number, r0: number, r1: number): void;
  rope_rows(x: number, cos: number, sin: number, H: number, d: number, t0: number, t1: number): void;
  q8_panel_bytes(inDim: number): number;
  mqa_scratch_bytes(M: number): number;
  q4_expand(region: number, srcAt: number, B: number, G: number, table: number): number;
}

class WasmLinear implements LinearWeight {
  released = false;
  constructor(
    readonly format: WeightFormat,
    readonly outDim: number,
    readonly inDim: number,
    /** f32: the [outDim, inDim] matrix; q4: packed codes and scales, interleaved per group; q8: int8 codes [outDim, inDim] then f32 scales at scalesPtr. */
    readonly ptr: number,
    readonly byteLength: number,
    readonly scalesPtr = 0,
  ) {}
}

export class WasmKernels implements Kernels {
  readonly name: string;
  private heap: Heap;
  private jobs: WasmJobs;
  /** Every buffer object memory.buffer has returned: a Float32Array on one of them lives in WASM memory. */
  private buffers = new WeakSet<ArrayBufferLike>();
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
    canBlock: boolean,
    private maxScratch: number,
    private shared: boolean,
  ) {
    this.name = `wasm-${relaxed ? 'relaxed' : 'simd128'}-${threads}t`;
    this.heap = new Heap(memory, exports.heap_base());
    this.jobs = new WasmJobs(this.heap.alloc(JOB_BYTES), exports.run, shared, canBlock, memory.buffer);
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
    let threads = Math.max(1, Math.min(JOB_MAX_THREADS, Math.floor(opts.threads ?? host.defaultThreads ?? 1)));
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
      w.postMessage({ module, memory, job: k.jobs.ptr, tid, spin: WORKER_SPIN });
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
      this.jobs.quit();
      for (const w of this.workers) w.terminate();
      this.workers = [];
    }
  }

  /** Bytes of WASM memory in use (weights + scratch). */
  get heapBytes(): number {
    return this.heap.used;
  }

  private readonly tables = new Map<Float32Array, number>();

  // Views over memory.buffer: re-created whenever memory.grow replaced (or extended) the buffer.
  private refreshViews(): void {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    this.u8 = new Uint8Array(buf);
    this.f32 = new Float32Array(buf);
    this.jobs.attach(buf);
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

  createLinear(w: Float32Array | Q4Matrix | Q8Matrix, outDim: number, inDim: number, format: WeightFormat = 'f32'): LinearWeight {
    if (w instanceof Q8Matrix) {
      if (w.outDim !== outDim || w.inDim !== inDim) throw new Error(`createLinear: Q8Matrix is [${w.outDim}, ${w.inDim}], expected [${outDim}, ${inDim}]`);
      return this.uploadQ8(w);
    }
    if (w instanceof Q4Matrix) {
      if (w.outDim !== outDim || w.inDim !== inDim) throw new Error(`createLinear: Q4Matrix is [${w.outDim}, ${w.inDim}], expected [${outDim}, ${inDim}]`);
      return this.uploadQ4(w);
    }
    if (w.length !== outDim * inDim) throw new Error(`createLinear: ${w.length} values for [${outDim}, ${inDim}]`);
    if (format === 'q4') return this.uploadQ4(Q4Matrix.quantize(w, outDim, inDim));
    if (format === 'q8') return this.uploadQ8(Q8Matrix.quantize(w, outDim, inDim));
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

  /** Room for a q4 weight that the caller fills in uploadQ4's layout (Kernels.reserveQ4). */
  reserveQ4(outDim: number, inDim: number): Q4Reservation {
    const n = Math.ceil(outDim / 4) * Math.ceil(inDim / Q4_GROUP);
    const bytes = n * Q4_GROUP_BYTES;
    const p = this.alloc(bytes + this.exports.q4_touch_slack()); // the GEMV reads ahead of the rows it uses
    let state: 'open' | 'done' = 'open';
    return {
      stable: typeof SharedArrayBuffer !== 'undefined' && this.memory.buffer instanceof SharedArrayBuffer, // grow never detaches a shared buffer
      view: () => { this.view(); return new Uint8Array(this.memory.buffer, p, bytes); },
      commit: () => { state = 'done'; return new WasmLinear('q4', outDim, inDim, p, bytes); },
      cancel: () => { if (state === 'open') { state = 'done'; this.heap.release(p); } },
      expandCompact: (srcAt, blocks, groups, table) => {
        if (srcAt % 4 !== 0 || srcAt < 0 || blocks * groups * Q4_GROUP_BYTES !== bytes || table.length !== 256) throw new Error('expandCompact: the body does not fit this reservation');
        return this.exports.q4_expand(p, srcAt, blocks, groups, this.tablePtr(table));
      },
    };
  }

  /** A 256-entry f32 table copied into WASM memory once (the v2.1 log-scale steps). */
  private tablePtr(table: Float32Array): number {
    let p = this.tables.get(table);
    if (p === undefined) {
      p = this.alloc(table.byteLength);
      this.f32.set(table, p / 4);
      this.tables.set(table, p);
    }
    return p;
  }

  /** Uploads a per-channel int8 matrix: codes row-major, then the f32 row scales (assembly/tower_q8.ts). */
  private uploadQ8(q: Q8Matrix): WasmLinear {
    const codeBytes = align(q.codes.length);
    const p = this.alloc(codeBytes + q.outDim * 4);
    new Int8Array(this.memory.buffer, p, q.codes.length).set(q.codes);
    this.f32.set(q.scales, (p + codeBytes) / 4);
    return new WasmLinear('q8', q.outDim, q.inDim, p, q.byteLength, p + codeBytes);
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
    if (ws[0].format !== 'q4' && this.inMemory(x) && this.inMemory(ys[0])) {
      // Activations already in WASM memory (allocF32: the vision tower's maps) are used in place.
      const w = ws[0], macs = T * inDim * w.outDim;
      if (w.format === 'f32') this.dispatch(OP_F32_GEMM, [w.ptr, x.byteOffset, ys[0].byteOffset, T, w.outDim, inDim], 0, 0, macs);
      else {
        const panelBytes = align(this.exports.q8_panel_bytes(inDim));
        this.dispatch(OP_Q8_GEMM, [w.ptr, w.scalesPtr, x.byteOffset, ys[0].byteOffset, T, w.outDim, inDim], this.scratch(panelBytes * this.threads), panelBytes, macs);
      }
      return;
    }
    const G = Math.ceil(inDim / Q4_GROUP);
    const outTotal = ws.reduce((s, w) => s + align(w.outDim * 4) / 4, 0);
    // Bytes per token of scratch; tokens go in chunks so the LM head (262144 outputs) stays bounded.
    const q4 = ws[0].format === 'q4';
    const perT = (inDim + outTotal) * 4 + (q4 ? G * (this.xb + 8) + this.exports.q4_tokens_bytes(G) : 0);
    const chunk = Math.max(1, Math.min(T, Math.floor(this.maxScratch / perT)));
    // Batched decode and prefill (Relaxed SIMD build, T ≥ Q4_BATCH_MIN_T): each thread unpacks 8
    // row blocks at a time into a scratch of its own, the tokens go in their own layout
    // (assembly/matmul_q4.ts).
    const unpackStride = q4 && T >= Q4_BATCH_MIN_T ? align(this.exports.q4_gemm_scratch_bytes(G)) : 0;
    // q8: one float32 panel of dequantized rows per thread (assembly/tower_q8.ts)
    const panelBytes = ws[0].format === 'q8' ? align(this.exports.q8_panel_bytes(inDim)) : 0;
    const callBytes = align(chunk * perT + 256 * (ws.length + 1));
    const base = this.scratch(callBytes + (unpackStride + panelBytes) * this.threads);
    const unpackBase = unpackStride ? base + callBytes : 0;
    for (let t0 = 0; t0 < T; t0 += chunk) {
      const n = Math.min(chunk, T - t0);
      const yps: number[] = [];
      let next = align(base + n * inDim * 4);
      for (const w of ws) { yps.push(next); next = align(next + n * w.outDim * 4); }
      this.view();
      const xp = this.inPlace(x, t0 * inDim, n * inDim, base, yps, ys, ws, t0);
      const macs = n * inDim * ws.reduce((s, w) => s + w.outDim, 0);
      if (ws[0].format === 'f32') {
        const w = ws[0];
        this.dispatch(OP_F32_GEMM, [w.ptr, xp, yps[0], n, w.outDim, inDim], 0, 0, macs);
      } else if (ws[0].format === 'q8') {
        const w = ws[0];
        this.dispatch(OP_Q8_GEMM, [w.ptr, w.scalesPtr, xp, yps[0], n, w.outDim, inDim], base + callBytes, panelBytes, macs);
      } else {
        const xq = next, xs = align(xq + n * G * this.xb), xc = align(xs + n * G * 4);
        this.exports.q4_quantize_act(xp, n, inDim, G, xq, xs, xc);
        let xArg = xq;
        // 2..q4_fused_max_t() tokens: the multi-token GEMV on the plain layout; more: the batched GEMM's
        if (unpackStride && n >= 2 && n > this.exports.q4_fused_max_t()) {
          xArg = align(xc + n * G * 4);
          this.exports.q4_tokens_batched(xq, xs, xc, n, G, xArg);
        }
        const args = [G, xArg, xs, xc, n, ws.length];
        ws.forEach((w, i) => args.push(w.ptr, yps[i], w.outDim));
        this.dispatch(OP_Q4_GEMM, args, unpackBase, unpackStride, macs);
      }
      this.view();
      ws.forEach((w, i) => { if (yps[i] !== ys[i].byteOffset + t0 * w.outDim * 4 || !this.inMemory(ys[i])) this.copyOut(yps[i], n * w.outDim, ys[i], t0 * w.outDim); });
    }
  }

  /**
   * linearMany's q4 chunk of tokens [t0, t0 + n): an x or y that lives in WASM memory (the
   * decoder's work buffers) is read or written in place, the others go through the call scratch.
   * Returns x's address (x copied to `scratchX` unless in place) and points yps[i] at ys[i]'s rows
   * where they are in place (the kernels write exactly outDim values per token).
   */
  private inPlace(x: Float32Array, at: number, count: number, scratchX: number, yps: number[], ys: readonly Float32Array[], ws: readonly WasmLinear[], t0: number): number {
    if (ws[0].format === 'q4') ws.forEach((w, i) => { if (this.inMemory(ys[i])) yps[i] = ys[i].byteOffset + t0 * w.outDim * 4; });
    if (ws[0].format === 'q4' && this.inMemory(x)) return x.byteOffset + at * 4;
    this.f32.set(x.subarray(at, at + count), scratchX / 4);
    return scratchX;
  }

  /** Kernels.linearRows: q4 weights run only the listed row blocks (OP_Q4_ROWS, the decode GEMV per block); others the full linear. */
  linearRows(weight: LinearWeight, x: Float32Array, y: Float32Array, ranges: Int32Array, nRanges: number): void {
    const w = this.own(weight);
    if (w.format !== 'q4') return this.linear(weight, x, 1, y);
    const { inDim, outDim } = w, G = Math.ceil(inDim / Q4_GROUP), B = Math.ceil(outDim / 4);
    if (x.length < inDim || y.length < outDim) throw new Error(`linearRows: x has ${x.length} (need ${inDim}), y ${y.length} (need ${outDim})`);
    let blocks = 0;
    for (let i = 0; i < nRanges; i++) {
      const b0 = ranges[2 * i], b1 = ranges[2 * i + 1];
      if (!(b0 >= 0 && b0 <= b1 && b1 <= B)) throw new Error(`linearRows: range ${i} [${b0}, ${b1}) outside the ${B} row blocks`);
      blocks += b1 - b0;
    }
    const xp = this.scratch(align(inDim * 4) + align(outDim * 4) + align(G * this.xb) + 2 * align(G * 4) + align(nRanges * 8 + 8));
    const yp = xp + align(inDim * 4), xq = yp + align(outDim * 4), xs = xq + align(G * this.xb), xc = xs + align(G * 4), rp = xc + align(G * 4);
    this.view();
    this.f32.set(x.subarray(0, inDim), xp / 4);
    new Int32Array(this.memory.buffer, rp, 2 * nRanges).set(ranges.subarray(0, 2 * nRanges));
    this.exports.q4_quantize_act(xp, 1, inDim, G, xq, xs, xc);
    this.dispatch(OP_Q4_ROWS, [G, xq, xs, xc, w.ptr, yp, outDim, rp, nRanges, blocks], 0, 0, blocks * 4 * inDim);
    this.view();
    for (let i = 0; i < nRanges; i++) {
      const o0 = ranges[2 * i] * 4, o1 = Math.min(outDim, ranges[2 * i + 1] * 4);
      y.set(this.f32.subarray(yp / 4 + o0, yp / 4 + o1), o0);
    }
  }

  geluMul(a: Float32Array, b: Float32Array, n: number): void {
    if (a.length < n || b.length < n) throw new Error(`geluMul: a has ${a.length}, b has ${b.length} values (need ${n})`);
    const io = new CallArrays(this, align(n * 4) * 2);
    const ap = io.out(a, n, true), bp = io.in(b, n);
    this.rowJob(ROW_GELU_MUL, Math.ceil(n / ROW_BLOCK), n, () => [ap, bp, n], () => this.exports.gelu_mul(ap, bp, n));
    io.finish();
  }

  softcap(x: Float32Array, n: number, cap: number): void {
    if (x.length < n) throw new Error(`softcap: x has ${x.length} values (need ${n})`);
    // element-wise, so cutting it into blocks between the threads changes no value (a batch's LM head: 262,400 × B)
    const inPlace = this.holds(x);
    const p = inPlace ? x.byteOffset : this.scratch(n * 4);
    this.view();
    if (!inPlace) this.f32.set(x.subarray(0, n), p / 4);
    this.rowJob(ROW_SOFTCAP, Math.ceil(n / ROW_BLOCK), n, () => [p, f32Bits(cap), n], () => this.exports.softcap(p, n, cap));
    if (!inPlace) this.copyOut(p, n, x);
  }

  /**
   * RowOps in WASM (assembly/norm.ts, assembly/altup.ts, assembly/residual.ts), bit-identical to tsRowOps. Arrays in
   * WASM memory (allocF32) are used in place, others copied through the scratch; weights are
   * copied into WASM memory once (constPtr).
   */
  readonly rowOps: RowOps = {
    rmsNorm: (x, weight, rows, dim, eps, out = x) => {
      const n = rows * dim;
      if (x.length < n || out.length < n) throw new Error(`rmsNorm: x has ${x.length}, out ${out.length} values (need ${rows}x${dim})`);
      const wp = weight ? this.constPtr(weight) : 0;
      const io = new CallArrays(this, align(n * 4) * 2);
      const op = io.out(out, n, out === x), xp = out === x ? op : io.in(x, n);
      this.rowJob(ROW_RMS_NORM, rows, n, () => [xp, wp, op, rows, dim, ...f64Words(eps)], () => this.exports.rms_norm(xp, wp, rows, dim, eps, op));
      io.finish();
      return out;
    },
    altupRouterDots: (x, normW, routerW, T, H, A, eps, scale, normed, dots) => {
      const nw = this.constPtr(normW), rw = this.constPtr(routerW);
      const io = new CallArrays(this, align(T * H * 4) * 2 + align(T * A * 8));
      const xp = io.in(x, T * H), np = io.out(normed, T * H), dp = io.alloc(T * A * 8);
      this.rowJob(ROW_ALTUP_ROUTER, T, T * H, () => [xp, nw, rw, T, H, A, ...f64Words(eps), f32Bits(scale), np, dp], () => this.exports.altup_router(xp, nw, rw, T, H, A, eps, scale, np, dp));
      io.finish();
      dots.set(new Float64Array(this.memory.buffer, dp, T * A));
    },
    altupMix4: (C, x, out, T, H) => {
      const n = 4 * T * H;
      const io = new CallArrays(this, align(T * 64) + align(n * 4) * 2);
      const cp = io.in(C, T * 16), xp = io.in(x, n), op = io.out(out, n);
      this.rowJob(ROW_ALTUP_MIX4, T, n, () => [cp, xp, op, T, H], () => this.exports.altup_mix4(cp, xp, op, T, H));
      io.finish();
    },
    altupCorrectStreams: (pred, activated, active, coef, out, T, H, A) => {
      const n = A * T * H;
      const io = new CallArrays(this, align(n * 4) * 2 + align(T * H * 4) + align(T * A * 4));
      const pp = io.in(pred, n), ap = io.in(activated, T * H), cp = io.in(coef, T * A), op = io.out(out, n);
      this.rowJob(ROW_ALTUP_CORRECT, T, n, () => [pp, ap, active, cp, op, T, H, A], () => this.exports.altup_correct(pp, ap, active, cp, op, T, H, A));
      io.finish();
    },
    addRepeated: (x, y, n, times = 1) => {
      if (x.length < n * times || y.length < n) throw new Error(`addRepeated: x has ${x.length}, y ${y.length} values (need ${times}x${n}, ${n})`);
      const io = new CallArrays(this, align(n * times * 4) + align(n * 4));
      const xp = io.out(x, n * times, true), yp = io.in(y, n);
      this.rowJob(ROW_ADD_REPEATED, Math.ceil(n / ROW_BLOCK), n * times, () => [xp, yp, n, times], () => this.exports.add_repeated(xp, yp, n, times));
      io.finish();
    },
    sum3Scaled: (a, b, c, s, out, n) => {
      if (a.length < n || b.length < n || c.length < n || out.length < n) throw new Error(`sum3Scaled: fewer than ${n} values`);
      const io = new CallArrays(this, align(n * 4) * 4);
      const ap = io.in(a, n), bp = io.in(b, n), cp = io.in(c, n), op = io.out(out, n);
      this.rowJob(ROW_SUM3_SCALED, Math.ceil(n / ROW_BLOCK), n, () => [ap, bp, cp, ...f64Words(s), op, n], () => this.exports.sum3_scaled(ap, bp, cp, s, op, n));
      io.finish();
    },
    scaleColumns: (x, w, out, rows, dim) => {
      const n = rows * dim;
      if (x.length < n || out.length < n || w.length < dim) throw new Error(`scaleColumns: x has ${x.length}, out ${out.length}, w ${w.length} values (need ${rows}x${dim})`);
      const wp = this.constPtr(w);
      const io = new CallArrays(this, align(n * 4) * 2);
      const op = io.out(out, n, out === x), xp = out === x ? op : io.in(x, n);
      this.rowJob(ROW_SCALE_COLUMNS, rows, n, () => [xp, wp, op, rows, dim], () => this.exports.scale_columns(xp, wp, op, rows, dim));
      io.finish();
      return out;
    },
    gaussianGeluMul: (gate, up, rows, dim, k) => {
      const n = rows * dim;
      if (gate.length < n || up.length < n) throw new Error(`gaussianGeluMul: gate has ${gate.length}, up ${up.length} values (need ${rows}x${dim})`);
      const tp = this.constPtr64(FAST_EXP_TABLE);
      const io = new CallArrays(this, align(n * 4) * 2 + align(rows * 4));
      const gp = io.out(gate, n, true), upp = io.in(up, n), cp = io.alloc(rows * 4);
      this.rowJob(ROW_GAUSSIAN_GELU, rows, 2 * n, () => [gp, upp, dim, ...f64Words(k), tp, cp], () => this.exports.gaussian_gelu_mul_rows(gp, upp, dim, k, tp, cp, 0, rows));
      io.finish();
      const counts = new Int32Array(this.memory.buffer, cp, rows);
      let kept = 0;
      for (let r = 0; r < rows; r++) kept += counts[r];
      return kept;
    },
    rope: (x, cos, sin, T, H, d) => {
      const n = T * H * d, half = d / 2;
      if (x.length < n || cos.length < T * half || sin.length < T * half) throw new Error(`rope: x has ${x.length}, cos ${cos.length}, sin ${sin.length} values (need ${T}x${H}x${d})`);
      const io = new CallArrays(this, align(n * 4) + 2 * align(T * half * 4));
      const xp = io.out(x, n, true), cp = io.in(cos, T * half), sp = io.in(sin, T * half);
      this.rowJob(ROW_ROPE, T, n, () => [xp, cp, sp, H, d], () => this.exports.rope_rows(xp, cp, sp, H, d, 0, T));
      io.finish();
    },
  };

  /**
   * Runs a row-wise kernel: a small call (a decode step's rows) directly on this thread, a larger
   * one (a prefill's) as an OP_ROW_OPS job cut between the threads by rows or element blocks
   * (assembly/row_jobs.ts); every row comes out the same either way. `work` ~ elements touched.
   */
  private rowJob(kind: number, units: number, work: number, args: () => number[], direct: () => void): void {
    if (this.threads > 1 && this.activeThreads > 1 && units > 1 && work * ROW_WORK >= this.smallJob) this.dispatch(OP_ROW_OPS, [kind, units, ...args()]);
    else direct();
  }

  /** A model constant (norm or router weight) in WASM memory, copied there on first use. */
  private constPtr(a: Float32Array): number {
    if (this.inMemory(a)) return a.byteOffset;
    let p = this.consts.get(a);
    if (p === undefined) {
      p = this.alloc(align(a.length * 4));
      this.f32.set(a, p / 4);
      this.consts.set(a, p);
      this.unfreed.register(a, p);
    }
    return p;
  }
  private readonly consts = new WeakMap<Float32Array, number>();

  /** constPtr for a float64 table (FAST_EXP_TABLE). */
  private constPtr64(a: Float64Array): number {
    let p = this.consts64.get(a);
    if (p === undefined) {
      p = this.alloc(align(a.length * 8));
      new Float64Array(this.memory.buffer, p, a.length).set(a);
      this.consts64.set(a, p);
    }
    return p;
  }
  private readonly consts64 = new WeakMap<Float64Array, number>();

  /** The per-call scratch region of at least `bytes` (for CallArrays), with fresh views. */
  callScratch(bytes: number): number {
    const p = this.scratch(bytes);
    this.view();
    return p;
  }
  /** The current Float32Array view of WASM memory (for CallArrays). */
  get heapF32(): Float32Array {
    return this.f32;
  }
  /** Whether a Float32Array lives in WASM memory (for CallArrays). */
  holds(a: Float32Array): boolean {
    return this.inMemory(a);
  }

  attention(p: AttentionParams): void {
    const { T, S, numHeads: H, numKvHeads: KVH, headDim: D } = p;
    if (H % KVH !== 0) throw new Error(`attention: ${H} heads not a multiple of ${KVH} kv heads`);
    const qn = T * H * D, kn = S * KVH * D;
    if (p.q.length < qn || p.k.length < kn || p.v.length < kn || p.out.length < qn) throw new Error('attention: q/k/v/out shorter than T, S and the head shapes say');
    const perThread = align(this.exports.attention_scratch_floats(D, H / KVH) * 4);
    // Arrays in WASM memory (a KV cache from allocF32, the model's work buffers) are used in
    // place; the others are copied in (and the output back out).
    const qIn = this.inMemory(p.q), oIn = this.inMemory(p.out), kIn = this.inMemory(p.k), vIn = this.inMemory(p.v);
    let next = this.scratch((qIn ? 0 : align(qn * 4)) + (oIn ? 0 : align(qn * 4)) + (kIn ? 0 : align(kn * 4)) + (vIn ? 0 : align(kn * 4)) + perThread * this.threads);
    const sp = next; next += perThread * this.threads;
    const qp = qIn ? p.q.byteOffset : next; if (!qIn) next += align(qn * 4);
    const op = oIn ? p.out.byteOffset : next; if (!oIn) next += align(qn * 4);
    const kp = kIn ? p.k.byteOffset : next; if (!kIn) next += align(kn * 4);
    const vp = vIn ? p.v.byteOffset : next;
    this.view();
    if (!qIn) this.f32.set(p.q.subarray(0, qn), qp / 4);
    if (!kIn) this.f32.set(p.k.subarray(0, kn), kp / 4);
    if (!vIn) this.f32.set(p.v.subarray(0, kn), vp / 4);
    this.dispatch(OP_ATTENTION, [qp, kp, vp, op, T, S, H, KVH, D, p.qPos0, p.kPos0, p.window, f32Bits(p.scale)], sp, perThread, 2 * T * H * S * D);
    if (!oIn) {
      this.view();
      this.copyOut(op, qn, p.out);
    }
  }

  // The towers' other operations (assembly/tower_ops.ts): inputs copied into the call scratch,
  // the job cut by output rows across the threads, the result copied back.

  depthwiseConv2d(p: DepthwiseConv2dParams): void {
    checkDepthwise(p);
    const { h, w, c, kernel: k, outH, outW } = p;
    const io = this.placed([p.x.subarray(0, h * w * c), p.taps.subarray(0, k * k * c), p.out.subarray(0, outH * outW * c)], [true, true, false]);
    this.dispatch(OP_DW_CONV2D, [io.ptrs[0], io.ptrs[1], io.ptrs[2], h, w, c, k, p.stride, p.padTop, p.padLeft, outH, outW], 0, 0, outH * outW * c * k * k);
    io.back(2);
  }

  rmsNormAct(p: RmsNormActParams): void {
    checkNorm(p);
    const { rows, dim } = p, n = rows * dim;
    const gamma = p.gamma ?? null, res = p.residual ?? null;
    const none = new Float32Array(0);
    const io = this.placed([p.x.subarray(0, n), p.weight, gamma ?? none, res ? res.subarray(0, n) : none], [true, true, true, true]);
    const epsBits = new Int32Array(new Float32Array([p.eps]).buffer)[0];
    this.dispatch(OP_RMS_NORM_ACT, [io.ptrs[0], io.ptrs[1], gamma ? io.ptrs[2] : 0, res ? io.ptrs[3] : 0, rows, dim, epsBits, p.gelu ? 1 : 0], 0, 0, n * (p.gelu ? 16 : 4));
    io.back(0);
  }

  multiQueryAttention(p: MultiQueryAttentionParams): void {
    checkMqa(p);
    const { rows, M, kd, vd } = p;
    const perThread = align(this.exports.mqa_scratch_bytes(M));
    // vᵀ [vd, M] (the second GEMM's weight) is written into place below
    const io = this.placed([p.q.subarray(0, rows * kd), p.k.subarray(0, M * kd), new Float32Array(vd * M), p.out.subarray(0, rows * vd)], [true, true, false, false], perThread * this.threads);
    const vT = this.f32, v = p.v, v0 = io.ptrs[2] / 4;
    for (let m = 0; m < M; m++) for (let j = 0; j < vd; j++) vT[v0 + j * M + m] = v[m * vd + j];
    this.dispatch(OP_MQA, [io.ptrs[0], io.ptrs[1], io.ptrs[2], io.ptrs[3], rows, M, kd, vd], io.extra, perThread, rows * M * (kd + vd));
    io.back(3);
  }

  /**
   * WASM addresses for a call's arrays: one already in WASM memory (allocF32) is used in place,
   * the others get room in the call scratch (copied in where `copyIn`), followed by `extraBytes`
   * of scratch at `extra`. `back(i)` copies array i's result out unless it was in place.
   */
  private placed(arrays: Float32Array[], copyIn: boolean[], extraBytes = 0): { ptrs: number[]; extra: number; back(i: number): void } {
    const resident = arrays.map((a) => a.length > 0 && this.inMemory(a));
    let bytes = 0;
    arrays.forEach((a, i) => { if (!resident[i]) bytes += align(a.length * 4); });
    const base = this.scratch(bytes + extraBytes);
    const ptrs: number[] = [];
    let next = base;
    this.view();
    arrays.forEach((a, i) => {
      if (resident[i]) { ptrs.push(a.byteOffset); return; }
      ptrs.push(next);
      if (copyIn[i] && a.length) this.f32.set(a, next / 4);
      next += align(a.length * 4);
    });
    return {
      ptrs, extra: next,
      back: (i) => { if (!resident[i]) { this.view(); this.copyOut(ptrs[i], arrays[i].length, arrays[i]); } },
    };
  }

  /**
   * dst[at .. at + n) = the n floats at byte `ptr` of WASM memory. Through byte views: V8 copies a
   * Float32Array out of shared memory element by element, ~15× slower than the same bytes.
   */
  private copyOut(ptr: number, n: number, dst: Float32Array, at = 0): void {
    if (dst.length < at + n) throw new Error(`copyOut: ${dst.length} floats, need ${at + n}`);
    new Uint8Array(dst.buffer, dst.byteOffset + at * 4, n * 4).set(this.u8.subarray(ptr, ptr + n * 4));
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
    return this.jobs.result(0);
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

  /** Runs one job: small ones (Laurel, PLE projections) on this thread alone, where waking a worker costs more than it saves. */
  private dispatch(op: number, args: number[], scratchBase = 0, scratchStride = 0, work = Infinity): void {
    this.view();
    const nt = work < this.smallJob ? 1 : Math.max(1, Math.min(this.threads, this.activeThreads));
    this.jobs.dispatch(op, args, nt, scratchBase, scratchStride);
  }
}

/**
 * The arrays of one row-op call: those already in WASM memory are passed in place, the others
 * get a slot in the per-call scratch (inputs copied in; outputs copied back by finish()).
 */
class CallArrays {
  private next: number;
  private readonly back: [Float32Array, number, number][] = [];
  constructor(private readonly k: WasmKernels, bytes: number) {
    this.next = k.callScratch(bytes);
  }
  alloc(bytes: number): number {
    const p = this.next;
    this.next += align(bytes);
    return p;
  }
  /** Pointer to the first n values of a (an input). */
  in(a: Float32Array, n: number): number {
    if (this.k.holds(a)) return a.byteOffset;
    const p = this.alloc(n * 4);
    this.k.heapF32.set(a.subarray(0, n), p / 4);
    return p;
  }
  /** Pointer for the first n values of a (an output; `preset`: copied in too, for kernels that write only part of it). */
  out(a: Float32Array, n: number, preset = false): number {
    if (this.k.holds(a)) return a.byteOffset;
    const p = this.alloc(n * 4);
    if (preset) this.k.heapF32.set(a.subarray(0, n), p / 4);
    this.back.push([a, p, n]);
    return p;
  }
  finish(): void {
    const f32 = this.k.heapF32;
    for (const [a, p, n] of this.back) a.set(f32.subarray(p / 4, p / 4 + n));
  }
}

/**
 * Loads a packed `.q4` tensor into the kernels. A version 3 blob (packed v2.1,
 * src/checkpoint/q4_compact.ts) already has the kernel's group order, so when the backend can
 * lend its memory (Kernels.reserveQ4) the blob is read from the file straight into the weight's
 * own region and widened there in one pass: no JS-side copy of the matrix ever exists, which
 * halves the pages a load touches and keeps the process from holding a second copy of the
 * largest tensor (the 286 MB LM head of E2B). Older blobs, and kernels without reserveQ4, go
 * through a Q4Matrix as before.
 */
import { readInto } from '../io/byte_source.js';
import type { Kernels, LinearWeight } from '../kernels/kernels.js';
import { Q4_GROUP, Q4_ROWS } from '../kernels/q4.js';
import type { TensorStore } from './checkpoint.js';
import { BLOB_HEADER, decodeQ4, parseQ4Header } from './packed_format.js';
import { expandQ4Blocks, LOG_SCALE } from './q4_compact.js';
import { CheckpointError } from './safetensors.js';

/**
 * The `.q4` tensor `name` of `store` as a kernels weight, checked against the [outDim, inDim]
 * the model expects (`where` names file and tensor in errors).
 */
export async function loadPackedQ4(store: TensorStore, name: string, kernels: Kernels, outDim: number, inDim: number, where: string): Promise<LinearWeight> {
  const { weight, ready } = await startPackedQ4(store, name, kernels, outDim, inDim, where);
  await ready;
  return weight;
}

/**
 * The same, but when the backend's memory never detaches (shared WASM memory) and the source
 * reads into it (a file) the weight comes back as soon as its memory is reserved and its bytes arrive in the background (`ready`): a
 * loader starts every read, then awaits them all, so the file copies (in libuv's threads, where
 * the page faults of fresh kernel memory are taken) run on other cores while this thread widens
 * the blobs already read. The weight must not be used before `ready` resolves.
 */
export async function startPackedQ4(
  store: TensorStore,
  name: string,
  kernels: Kernels,
  outDim: number,
  inDim: number,
  where: string,
  slots?: ReadSlots,
): Promise<{ weight: LinearWeight; ready: Promise<void> }> {
  const { info, source } = await store.sourceOf(name);
  const len = info.byteLength;
  const h = parseQ4Header(await source.read(info.offset, Math.min(BLOB_HEADER, len)), len, where);
  if (h.outDim !== outDim || h.inDim !== inDim) throw new CheckpointError(`${where} is [${h.outDim}, ${h.inDim}] but the config implies [${outDim}, ${inDim}]`);
  if (h.scales !== 'u8log' || !kernels.reserveQ4)
    return { weight: kernels.createLinear(decodeQ4(await store.readBytes(name), where), outDim, inDim, 'q4'), ready: Promise.resolve() };
  const r = kernels.reserveQ4(outDim, inDim);
  const body = len - BLOB_HEADER,
    tail = r.view().length - body;
  if (tail < 0) {
    // One group per row block (inDim ≤ 32): the compact block (16 + 68 bytes) is larger than
    // the widened one (80), so it cannot be widened in place; decode it instead.
    r.cancel();
    return { weight: kernels.createLinear(decodeQ4(await store.readBytes(name), where), outDim, inDim, 'q4'), ready: Promise.resolve() };
  }
  const B = Math.ceil(outDim / Q4_ROWS),
    G = Math.ceil(inDim / Q4_GROUP);
  const fill = async () => {
    const read = () => readInto(source, info.offset + BLOB_HEADER, r.view().subarray(tail));
    await (slots ? slots.run(read) : read());
    // In the kernels (WASM SIMD, ~5× the JS loop) when they can; a bad block is named by the JS
    // pass over what is left (the kernel stops before writing it).
    const bad = r.expandCompact?.(tail, B, G, LOG_SCALE) ?? 0;
    if (bad >= 0) expandQ4Blocks(r.view(), tail, B, G, where, bad);
  };
  // In the background only when nothing else holds the bytes meanwhile: kernel memory that stays
  // valid, and a source that reads into it (a Blob would buffer every weight at once).
  if (!r.stable || !source.readInto) {
    try {
      await fill();
    } catch (e) {
      r.cancel();
      throw e;
    }
    return { weight: r.commit(), ready: Promise.resolve() };
  }
  const weight = r.commit();
  const ready = fill().catch((e: unknown) => {
    kernels.release(weight);
    throw e;
  });
  ready.catch(() => {}); // observed by the loader's await; never an unhandled rejection meanwhile
  return { weight, ready };
}

/**
 * At most `n` reads at a time, started in the order they were asked for (a FIFO semaphore). A
 * loader that starts every weight at once queues its bodies here rather than in the file
 * system's thread pool, so a small read issued meanwhile (the tokenizer, an embedding row of the
 * first prompt) waits behind at most `n` weights, not behind the whole model.
 */
export class ReadSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

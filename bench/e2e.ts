/**
 * End-to-end prefill/decode timing hook.
 *
 * Until the real decoder (src/model/) is wired in, this is a SYNTHETIC int4 model with the
 * exact Gemma 3n E2B text-decoder shapes: per token it runs every linear of every layer
 * (random q4 weights) and the attention over the KV cache, but no norms, RoPE, AltUp/Laurel
 * elementwise math or sampling. To switch to the real model, make `createE2eModel` return an
 * object that runs the lead's decoder (prefill of `tokens` prompt tokens, one decode step).
 */
import type { LinearWeight } from '../src/kernels/kernels.js';
import type { WasmKernels } from '../src/kernels/wasm_kernels.js';
import { randomQ4 } from './kernels.js';

export interface E2eModel {
  description: string;
  /** Bytes of weights one decode step reads (for decode_limit_tok_s). */
  weightBytesPerToken: number;
  /** Runs the prompt of `tokens` tokens (logits for the last one only). */
  prefill(tokens: number): void | Promise<void>;
  /** One decode step at the current position. */
  decode(): void | Promise<void>;
}

/**
 * The real decoder (src/model/) on the synthetic E2B checkpoint in int4: every norm, RoPE,
 * AltUp, LAuReL, PLE lookup (table streamed from disk), sparsity and the soft-capped LM head.
 */
export async function createRealE2eModel(k: WasmKernels, log: (s: string) => void = () => {}): Promise<E2eModel> {
  const { packedE2B } = await import('./e2b_synthetic.js');
  const { loadTextWeights } = await import('../src/checkpoint/weights.js');
  const { Gemma3nTextModel } = await import('../src/model/text_model.js');
  const { store, config } = await packedE2B(log);
  const weights = await loadTextWeights(store, config, k, { format: 'q4', ple: 'stream' });
  const model = new Gemma3nTextModel(config, weights, k);
  // Bytes one decode step reads: every int4 linear the token passes through (KV-shared layers
  // have no k/v), plus one PLE row; the embedding row is negligible.
  let bytes = 0;
  for (const n of store.names()) if (n.endsWith('.q4') && !/layers\.(2\d)\.self_attn\.[kv]_proj/.test(n)) bytes += (await store.info(n)).byteLength;
  let cache = model.newCache();
  let prompt = 0;
  const ids = (T: number, base: number) => Array.from({ length: T }, (_, i) => ((base + i) * 7919 + 11) % 262_144);
  return {
    description: 'real decoder, synthetic E2B-shape int4 weights, PLE streamed',
    weightBytesPerToken: bytes,
    async prefill(tokens: number) {
      cache.release();
      cache = model.newCache();
      await model.forward(ids(tokens, 0), cache);
      prompt = cache.position;
    },
    // decode at positions prompt .. prompt+63 over and over, so the context stays ~prompt long
    async decode() {
      if (cache.position >= prompt + 64) cache.rewind(prompt);
      await model.forward(ids(1, cache.position), cache);
    },
  };
}

// Gemma 3n E2B text config (config.json of google/gemma-3n-E2B-it).
export const E2B = {
  hidden: 2048,
  ffn: 8192,
  layers: 30,
  heads: 8,
  kvHeads: 2,
  headDim: 256,
  vocab: 262144,
  ple: 256,
  kvShared: 10,
  laurelRank: 64,
  altupInputs: 4,
  slidingWindow: 512,
  fullEvery: 5,
};

export async function createE2eModel(k: WasmKernels): Promise<E2eModel> {
  const c = E2B;
  const qDim = c.heads * c.headDim,
    kvDim = c.kvHeads * c.headDim;
  let seed = 1;
  let bytes = 0;
  const lin = (outDim: number, inDim: number): LinearWeight => {
    const q = randomQ4(outDim, inDim, seed++);
    bytes += q.byteLength;
    return k.createLinear(q, outDim, inDim);
  };
  const layers = Array.from({ length: c.layers }, (_, i) => ({
    q: lin(qDim, c.hidden),
    k: i < c.layers - c.kvShared ? lin(kvDim, c.hidden) : null, // last 10 layers reuse earlier KV
    v: i < c.layers - c.kvShared ? lin(kvDim, c.hidden) : null,
    o: lin(c.hidden, qDim),
    gate: lin(c.ffn, c.hidden),
    up: lin(c.ffn, c.hidden),
    down: lin(c.hidden, c.ffn),
    laurelL: lin(c.laurelRank, c.hidden),
    laurelR: lin(c.hidden, c.laurelRank),
    pleGate: lin(c.ple, c.hidden),
    pleProj: lin(c.hidden, c.ple),
    window: (i + 1) % c.fullEvery === 0 ? 0 : c.slidingWindow,
  }));
  const altupIn = [0, 1, 2].map(() => lin(c.hidden, c.hidden));
  const altupOut = [0, 1, 2].map(() => lin(c.hidden, c.hidden));
  const pleModelProj = lin(c.layers * c.ple, c.hidden);
  const lmHead = lin(c.vocab, c.hidden); // tied embedding, int4

  const maxT = 128,
    maxS = 4096;
  const buf = (n: number) => new Float32Array(n).map((_, i) => Math.sin(i) * 0.1);
  const h = buf(maxT * c.hidden),
    qb = buf(maxT * qDim),
    ao = buf(maxT * qDim),
    ffa = buf(maxT * c.ffn),
    ffb = buf(maxT * c.ffn);
  const small = buf(maxT * c.layers * c.ple),
    logits = new Float32Array(c.vocab),
    tmp = buf(maxT * c.hidden);
  // KV cache inside WASM memory (zero-copy attention), as the real model should allocate it.
  const kvBuf = () => k.allocF32(maxS * kvDim).fill(0.01);
  const kCache = Array.from({ length: c.layers - c.kvShared }, kvBuf);
  const vCache = Array.from({ length: c.layers - c.kvShared }, kvBuf);
  let pos = 0,
    prompt = 0;

  const step = (T: number) => {
    k.linear(pleModelProj, h, T, small);
    for (const w of altupIn) k.linear(w, h, T, tmp);
    layers.forEach((L, i) => {
      const own = c.layers - c.kvShared; // layers 20..29 read the KV of the last layer of their kind
      const kvLayer = i < own ? i : L.window ? own - 2 : own - 1;
      k.linear(L.laurelL, h, T, small);
      k.linear(L.laurelR, small, T, tmp);
      k.linear(L.q, h, T, qb);
      if (L.k && L.v) {
        k.linear(L.k, h, T, kCache[i].subarray(pos * kvDim));
        k.linear(L.v, h, T, vCache[i].subarray(pos * kvDim));
      }
      const S = pos + T;
      k.attention({
        q: qb,
        k: kCache[kvLayer],
        v: vCache[kvLayer],
        T,
        S,
        numHeads: c.heads,
        numKvHeads: c.kvHeads,
        headDim: c.headDim,
        qPos0: pos,
        kPos0: 0,
        window: L.window,
        scale: 1,
        out: ao,
      });
      k.linear(L.o, ao, T, tmp);
      k.linear(L.gate, h, T, ffa);
      k.linear(L.up, h, T, ffb);
      k.linear(L.down, ffa, T, tmp);
      k.linear(L.pleGate, h, T, small);
      k.linear(L.pleProj, small, T, tmp);
    });
    for (const w of altupOut) k.linear(w, h, T, tmp);
    k.linear(lmHead, h.subarray((T - 1) * c.hidden), 1, logits);
    pos += T;
  };
  return {
    description: 'synthetic E2B-shape int4 decoder (linears + attention only)',
    weightBytesPerToken: bytes,
    prefill(tokens: number) {
      pos = 0;
      step(Math.min(tokens, maxT));
      prompt = pos;
    },
    // decode at positions prompt .. prompt+63 over and over, so the context stays ~prompt long
    decode() {
      if (pos >= prompt + 64) pos = prompt;
      step(1);
    },
  };
}

/**
 * Choosing the next token from logits: greedy, or sampling with temperature, top-k, top-p
 * (nucleus), min-p and a repetition penalty, from a seeded generator so runs reproduce.
 */
import { argmax } from './greedy.js';
import { Rng } from '../util/rng.js';

export interface SamplingOptions {
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1 = off). */
  topP?: number;
  /** Drop tokens whose probability is below minP × the top probability (0 = off). */
  minP?: number;
  /** > 1 discourages tokens already seen (CTRL-style: divide positive logits, multiply negative). */
  repetitionPenalty?: number;
  seed?: number;
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (field: string, v: unknown, rule: string) => {
    throw new RangeError(`invalid sampling option ${field}=${String(v)}: ${rule}`);
  };
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad('temperature', o.temperature, 'must be a finite number >= 0');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('topK', o.topK, 'must be an integer >= 0');
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('topP', o.topP, 'must be in (0, 1]');
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP < 1)) bad('minP', o.minP, 'must be in [0, 1)');
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty)))
    bad('repetitionPenalty', o.repetitionPenalty, 'must be a finite number > 0');
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) bad('seed', o.seed, 'must be an integer');
}

export class Sampler {
  private readonly rng: Rng;
  private idx = new Int32Array(0);
  private probs = new Float32Array(0);

  constructor(readonly opts: SamplingOptions = {}) {
    validateSampling(opts);
    this.rng = new Rng(opts.seed ?? 0x5eed);
  }

  /** Picks a token from `logits` (modified in place by the penalty); `history` = ids seen so far. */
  sample(logits: Float32Array, history: ArrayLike<number> = []): number {
    const { temperature = 1, topK = 0, topP = 1, minP = 0, repetitionPenalty = 1 } = this.opts;
    if (repetitionPenalty !== 1) {
      const seen = new Set<number>();
      for (let i = 0; i < history.length; i++) seen.add(history[i]);
      for (const id of seen) if (id >= 0 && id < logits.length) logits[id] = logits[id] > 0 ? logits[id] / repetitionPenalty : logits[id] * repetitionPenalty;
    }
    if (temperature === 0) return argmax(logits);

    // Candidates, most likely first. Top-k keeps the k best with a small heap; otherwise tokens
    // more than 40 temperature-scaled nats below the best (probability ratio < 5e-18) are
    // dropped before sorting: together they weigh less than 1e-12 of the mass.
    const V = logits.length;
    if (this.idx.length < V) {
      this.idx = new Int32Array(V);
      this.probs = new Float32Array(V);
    }
    let n: number;
    if (topK > 0 && topK < V) n = topKIndices(logits, topK, this.idx);
    else {
      let best = -Infinity;
      for (let i = 0; i < V; i++) if (logits[i] > best) best = logits[i];
      const floor = best - 40 * temperature;
      n = 0;
      for (let i = 0; i < V; i++) if (logits[i] >= floor) this.idx[n++] = i;
    }
    const idx = this.idx.subarray(0, n);
    idx.sort((a, b) => logits[b] - logits[a] || a - b);
    const max = logits[idx[0]];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const p = Math.exp((logits[idx[i]] - max) / temperature);
      this.probs[i] = p;
      sum += p;
    }
    // Tokens masked to -Infinity (constrained decoding) have probability 0: never candidates.
    while (n > 1 && this.probs[n - 1] === 0) n--;
    // min-p: relative to the top token's probability.
    if (minP > 0) {
      const cut = this.probs[0] * minP;
      let m = 1;
      while (m < n && this.probs[m] >= cut) m++;
      for (let i = m; i < n; i++) sum -= this.probs[i];
      n = m;
    }
    // top-p: smallest prefix whose mass reaches p.
    if (topP < 1) {
      let acc = 0,
        m = 0;
      while (m < n) {
        acc += this.probs[m++] / sum;
        if (acc >= topP) break;
      }
      for (let i = m; i < n; i++) sum -= this.probs[i];
      n = m;
    }
    let r = this.rng.uniform() * sum;
    for (let i = 0; i < n; i++) {
      r -= this.probs[i];
      if (r <= 0) return idx[i];
    }
    return idx[n - 1];
  }
}

/** Writes the indices of the k largest logits into out[0..k) (unordered); returns k. */
function topKIndices(logits: Float32Array, k: number, out: Int32Array): number {
  // Min-heap of size k over logits: the root is the smallest kept value.
  const heap = out;
  let size = 0;
  const less = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1,
        r = l + 1;
      let m = i;
      if (l < size && less(heap[l], heap[m])) m = l;
      if (r < size && less(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < logits.length; i++) {
    if (size < k) {
      heap[size] = i;
      let j = size++;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (!less(heap[j], heap[p])) break;
        [heap[j], heap[p]] = [heap[p], heap[j]];
        j = p;
      }
    } else if (less(heap[0], i)) {
      heap[0] = i;
      down(0);
    }
  }
  return size;
}

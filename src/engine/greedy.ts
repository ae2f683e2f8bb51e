/**
 * Greedy decoding: prefill the prompt, then feed back the argmax token one step at a time.
 * (Sampling, stop strings and streaming live in the generation API on top of this.)
 */
import type { KVCache } from '../model/kv_cache.js';
import type { CausalLM } from '../model/causal_lm.js';

export function argmax(x: Float32Array, offset = 0, n = x.length - offset): number {
  let best = 0,
    bestV = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

export interface GreedyOptions {
  cache?: KVCache;
  /** Sees the last-position logits that chose each new token (row 0 from the prefill). */
  onLogits?: (logits: Float32Array) => void;
  onToken?: (id: number) => void;
}

/** Generates exactly `maxTokens` ids (no EOS stopping), as the golden generations do. */
export async function greedyGenerate(model: CausalLM, promptIds: ArrayLike<number>, maxTokens: number, opts: GreedyOptions = {}): Promise<number[]> {
  const cache = opts.cache ?? model.newCache();
  const out: number[] = [];
  let input: ArrayLike<number> = promptIds;
  try {
    for (let s = 0; s < maxTokens; s++) {
      const { logits } = await model.forward(input, cache, { logits: 'last' });
      opts.onLogits?.(logits);
      const next = argmax(logits);
      out.push(next);
      opts.onToken?.(next);
      input = [next];
    }
  } finally {
    if (!opts.cache) cache.release();
  }
  return out;
}

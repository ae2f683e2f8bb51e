/**
 * `gemma3n trace`: run the model on given token ids and write named intermediates to a
 * safetensors file (the golden-output face of the engine), optionally comparing with a
 * reference file.
 *
 * Written tensors: logits [1,T,V] (after soft-capping), hidden_states [L+1, A, 1, T, H],
 * last_hidden_state [1,T,H], inputs_embeds [1,T,H], per_layer_inputs [1,T,L,P], input_ids [1,T].
 * With `all`, every other named intermediate of the forward pass too (src/model/trace.ts:
 * layers.N.predictions, layers.N.attn_gated, ...), in the order the forward pass produced them.
 * With `steps`, that many greedy decode steps follow the prompt, one token each through the KV
 * cache, their tensors prefixed `step.S.` (S = 1..steps), and `generated_ids` [1,steps]: another
 * runtime can be diffed layer by layer and step by step.
 */
import type { CausalLM } from '../model/causal_lm.js';
import type { KVCache } from '../model/kv_cache.js';
import { numel, type SafetensorsFile, type TensorToWrite } from '../checkpoint/safetensors.js';

/**
 * What tracing needs from a decoder (Gemma 3n or Gemma 4). Gemma 3n's AltUp gives hidden_states
 * an A axis ([L+1, A, 1, T, H]); Gemma 4 has one stream ([L+1, 1, T, H], plus layer_outputs
 * [L, 1, T, H], the raw output of each layer, as its goldens have them).
 */
export type TraceableModel = CausalLM & { config: { numHiddenLayers: number; hiddenSize: number; vocabSize: number; altupNumInputs?: number } };

export interface TraceTextOptions {
  /** Every named intermediate, not only the golden set. */
  all?: boolean;
  /** Greedy decode steps after the prompt (default 0). */
  steps?: number;
}

/** The golden set, in the order the files have always had. */
const GOLDEN_SET = ['logits', 'last_hidden_state', 'inputs_embeds', 'per_layer_inputs'];

export async function traceText(model: TraceableModel, ids: number[], inputsEmbeds?: Float32Array, opts: TraceTextOptions = {}): Promise<TensorToWrite[]> {
  const steps = opts.steps ?? 0;
  if (!(Number.isInteger(steps) && steps >= 0)) throw new RangeError(`trace: steps must be a non-negative integer, got ${steps}`);
  const cache = model.newCache();
  try {
    const out: TensorToWrite[] = [{ name: 'input_ids', dtype: 'I32', shape: [1, ids.length], data: Int32Array.from(ids) }];
    let step = await traceStep(model, ids, cache, inputsEmbeds, opts.all === true);
    out.push(...step.tensors);
    const generated = new Int32Array(steps);
    for (let s = 1; s <= steps; s++) {
      generated[s - 1] = argmaxLastRow(step.logits, model.config.vocabSize);
      step = await traceStep(model, [generated[s - 1]], cache, undefined, opts.all === true);
      for (const t of step.tensors) out.push({ ...t, name: `step.${s}.${t.name}` });
    }
    if (steps > 0) out.push({ name: 'generated_ids', dtype: 'I32', shape: [1, steps], data: generated });
    return out;
  } finally {
    cache.release();
  }
}

/** One forward step with a tracer: the golden set, the stacked hidden_states and, with `all`, the rest. */
async function traceStep(
  model: TraceableModel,
  ids: number[],
  cache: KVCache,
  inputsEmbeds: Float32Array | undefined,
  all: boolean,
): Promise<{ tensors: TensorToWrite[]; logits: Float32Array }> {
  const c = model.config;
  const T = ids.length,
    L = c.numHiddenLayers,
    A = c.altupNumInputs ?? 1,
    H = c.hiddenSize;
  const got = new Map<string, { data: Float32Array; shape: number[] }>();
  const hidden = new Float32Array((L + 1) * A * T * H);
  let layerOutputs: Float32Array | null = null;
  const { logits } = await model.forward(ids, cache, {
    logits: 'all',
    inputsEmbeds,
    trace: (name, data, shape) => {
      const m = /^hidden_states\.(\d+)$/.exec(name);
      const lo = /^layer_outputs\.(\d+)$/.exec(name);
      if (m) hidden.set(data, Number(m[1]) * A * T * H);
      else if (lo) (layerOutputs ??= new Float32Array(L * T * H)).set(data, Number(lo[1]) * T * H);
      else if (all || GOLDEN_SET.includes(name)) got.set(name, { data: new Float32Array(data), shape });
    },
  });
  const tensors: TensorToWrite[] = [];
  for (const name of GOLDEN_SET) {
    const t = got.get(name);
    if (t) tensors.push({ name, dtype: 'F32', shape: t.shape, data: t.data });
  }
  tensors.push({ name: 'hidden_states', dtype: 'F32', shape: c.altupNumInputs === undefined ? [L + 1, 1, T, H] : [L + 1, A, 1, T, H], data: hidden });
  if (layerOutputs) tensors.push({ name: 'layer_outputs', dtype: 'F32', shape: [L, 1, T, H], data: layerOutputs });
  for (const [name, t] of got) if (!GOLDEN_SET.includes(name)) tensors.push({ name, dtype: 'F32', shape: t.shape, data: t.data });
  return { tensors, logits };
}

/** Greedy choice from the last row of [rows, V] logits (the first maximum, as torch.argmax). */
function argmaxLastRow(logits: Float32Array, V: number): number {
  const o = logits.length - V;
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[o + i] > logits[o + best]) best = i;
  return best;
}

/** Tolerances of the golden README per tensor (f32 implementation). */
export const GOLDEN_TOLERANCE: Readonly<Record<string, number>> = {
  logits: 5e-4,
  last_hidden_state: 2e-4,
  hidden_states: 2e-3,
  inputs_embeds: 1e-5,
  per_layer_inputs: 1e-5,
};

/** Tolerances of test/golden/gemma4/README.md (f32 implementation). */
export const GEMMA4_GOLDEN_TOLERANCE: Readonly<Record<string, number>> = {
  logits: 1e-3,
  last_hidden_state: 5e-4,
  hidden_states: 2e-3,
  layer_outputs: 2e-3,
  inputs_embeds: 1e-6,
  per_layer_inputs: 1e-5,
};

export interface CompareRow {
  name: string;
  goldenName: string | null;
  maxAbsDiff: number;
  tolerance: number;
  ok: boolean;
  note?: string;
}

/**
 * Compares traced tensors with a reference file. A tensor `x` is matched to `x` there, or to
 * `x.N` where the reference's `input_ids.N` equals the traced ids (the golden files hold
 * several sequences).
 */
export async function compareWithGolden(
  traced: TensorToWrite[],
  golden: SafetensorsFile,
  tolerance?: number,
  table: Readonly<Record<string, number>> = GOLDEN_TOLERANCE,
): Promise<CompareRow[]> {
  const ids = traced.find((t) => t.name === 'input_ids');
  let suffix = '';
  if (ids && !golden.tensors.has('input_ids')) {
    for (const name of golden.tensors.keys()) {
      const m = /^input_ids(\.\w+)$/.exec(name);
      if (!m) continue;
      const ref = await golden.readF32(name);
      const mine = ids.data as Int32Array;
      if (ref.length === mine.length && ref.every((v, i) => v === mine[i])) {
        suffix = m[1];
        break;
      }
    }
  }
  const rows: CompareRow[] = [];
  for (const t of traced) {
    if (t.name === 'input_ids') continue;
    const tol = tolerance ?? table[t.name.replace(/^.*\./, '')] ?? table[t.name] ?? 5e-4;
    const gname = [t.name + suffix, t.name].find((n) => golden.tensors.has(n)) ?? null;
    if (!gname) {
      rows.push({ name: t.name, goldenName: null, maxAbsDiff: NaN, tolerance: tol, ok: true, note: 'not in reference' });
      continue;
    }
    const info = golden.info(gname);
    if (numel(info.shape) !== numel(t.shape)) {
      rows.push({ name: t.name, goldenName: gname, maxAbsDiff: Infinity, tolerance: tol, ok: false, note: `shape [${t.shape}] vs reference [${info.shape}]` });
      continue;
    }
    const ref = await golden.readF32(gname);
    const mine = t.data as Float32Array;
    let m = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(ref[i] - Number(mine[i]));
      if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
    }
    rows.push({ name: t.name, goldenName: gname, maxAbsDiff: m, tolerance: tol, ok: m <= tol });
  }
  return rows;
}

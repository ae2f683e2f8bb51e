/**
 * `gemma3n trace`: run the model on given token ids and write named intermediates to a
 * safetensors file (the golden-output face of the engine), optionally comparing with a
 * reference file.
 *
 * Written tensors: logits [1,T,V] (after soft-capping), hidden_states [L+1, A, 1, T, H],
 * last_hidden_state [1,T,H], inputs_embeds [1,T,H], per_layer_inputs [1,T,L,P], input_ids [1,T].
 */
import type { Gemma3nTextModel } from '../model/text_model.js';
import { numel, type SafetensorsFile, type TensorToWrite } from '../checkpoint/safetensors.js';

export async function traceText(model: Gemma3nTextModel, ids: number[], inputsEmbeds?: Float32Array): Promise<TensorToWrite[]> {
  const c = model.config;
  const T = ids.length, L = c.numHiddenLayers, A = c.altupNumInputs, H = c.hiddenSize;
  const got = new Map<string, { data: Float32Array; shape: number[] }>();
  const hidden = new Float32Array((L + 1) * A * T * H);
  const cache = model.newCache();
  await model.forward(ids, cache, {
    logits: 'all',
    inputsEmbeds,
    trace: (name, data, shape) => {
      const m = /^hidden_states\.(\d+)$/.exec(name);
      if (m) hidden.set(data, Number(m[1]) * A * T * H);
      else got.set(name, { data: new Float32Array(data), shape });
    },
  });
  cache.release();
  const out: TensorToWrite[] = [{ name: 'input_ids', dtype: 'I32', shape: [1, T], data: Int32Array.from(ids) }];
  for (const name of ['logits', 'last_hidden_state', 'inputs_embeds', 'per_layer_inputs']) {
    const t = got.get(name);
    if (t) out.push({ name, dtype: 'F32', shape: t.shape, data: t.data });
  }
  out.push({ name: 'hidden_states', dtype: 'F32', shape: [L + 1, A, 1, T, H], data: hidden });
  return out;
}

/** Tolerances of the golden README per tensor (f32 implementation). */
export const GOLDEN_TOLERANCE: Readonly<Record<string, number>> = {
  logits: 5e-4,
  last_hidden_state: 2e-4,
  hidden_states: 2e-3,
  inputs_embeds: 1e-5,
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
export async function compareWithGolden(traced: TensorToWrite[], golden: SafetensorsFile, tolerance?: number): Promise<CompareRow[]> {
  const ids = traced.find((t) => t.name === 'input_ids');
  let suffix = '';
  if (ids && !golden.tensors.has('input_ids')) {
    for (const name of golden.tensors.keys()) {
      const m = /^input_ids(\.\w+)$/.exec(name);
      if (!m) continue;
      const ref = await golden.readF32(name);
      const mine = ids.data as Int32Array;
      if (ref.length === mine.length && ref.every((v, i) => v === mine[i])) { suffix = m[1]; break; }
    }
  }
  const rows: CompareRow[] = [];
  for (const t of traced) {
    if (t.name === 'input_ids') continue;
    const tol = tolerance ?? GOLDEN_TOLERANCE[t.name.replace(/^.*\./, '')] ?? GOLDEN_TOLERANCE[t.name] ?? 5e-4;
    const gname = [t.name + suffix, t.name].find((n) => golden.tensors.has(n)) ?? null;
    if (!gname) { rows.push({ name: t.name, goldenName: null, maxAbsDiff: NaN, tolerance: tol, ok: true, note: 'not in reference' }); continue; }
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

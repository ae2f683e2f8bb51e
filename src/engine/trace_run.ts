/**
 * The work of `gemma3n trace`, runtime-neutral: a model folder (any FileProvider) and token
 * ids in, the bytes of the safetensors file out. Node's CLI (src/cli/commands/trace.ts),
 * `npm run trace:deno` (scripts/trace-deno.ts) and `npm run trace:browser` (a page in headless
 * Chromium, scripts/trace-browser.mjs) all call this one function, so for the same model and
 * ids the three files must be byte-identical (test/browser/trace_runtimes.test.ts checks it).
 */
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels } from '../kernels/kernels.js';
import { TsKernels } from '../kernels/ts_kernels.js';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors.js';
import { Gemma3nTextModel } from '../model/text_model.js';
import { traceText } from '../cli/trace.js';

export interface TraceRunOptions {
  /** Token ids to run (no BOS is added). */
  ids: number[];
  /** --weights: a .safetensors file or index inside the folder. */
  weightsFile?: string;
  /** Default: TsKernels (the float32 reference, the same bits in every runtime). */
  kernels?: Kernels;
  onProgress?: (done: number, total: number) => void;
}

/** Loads the model, traces it on the ids and returns the tensors (for --compare) and file bytes. */
export async function traceRun(folder: FileProvider, opts: TraceRunOptions): Promise<{ tensors: TensorToWrite[]; bytes: Uint8Array }> {
  const { model, checkpoint } = await Gemma3nTextModel.load(folder, opts.kernels ?? new TsKernels(), { weightsFile: opts.weightsFile, onProgress: opts.onProgress });
  await checkpoint.close();
  const tensors = await traceText(model, opts.ids);
  return { tensors, bytes: writeSafetensors(tensors) };
}

/** The subset of trace flags every runtime understands: --model DIR --ids a,b,c --out FILE [--weights F]. */
export interface TraceArgs {
  model?: string;
  ids: number[];
  out: string;
  weights?: string;
}

/** Parses trace flags without node:util (Deno and the browser driver use it). */
export function parseTraceArgs(argv: readonly string[]): TraceArgs {
  const v: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(model|ids|out|weights)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`trace: unknown or unsupported argument '${argv[i]}' (this runner takes --model DIR --ids 2,105,9 --out FILE.safetensors [--weights FILE])`);
    const val = m[2] ?? argv[++i];
    if (val === undefined) throw new Error(`trace: --${m[1]} needs a value`);
    v[m[1]] = val;
  }
  if (v.ids === undefined) throw new Error('trace: --ids is required');
  if (v.out === undefined) throw new Error('trace: --out FILE.safetensors is required');
  const ids = v.ids.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`--ids: '${p}' is not a non-negative integer token id`);
    return Number(p);
  });
  if (ids.length === 0) throw new Error(`--ids: expected a comma-separated list of token ids, got '${v.ids}'`);
  return { model: v.model, ids, out: v.out, weights: v.weights };
}

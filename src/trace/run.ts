/**
 * The work of `gemma3n trace`, runtime-neutral: a model folder (any FileProvider) and token
 * ids in, the bytes of the safetensors file out. Node's CLI (src/cli/commands/trace.ts),
 * `npm run trace:deno` (scripts/trace-deno.ts) and `npm run trace:browser` (a page in headless
 * Chromium, scripts/trace-browser.mjs) all call this one function, so for the same model and
 * ids the three files must be byte-identical (test/browser/browser.test.ts checks it).
 */
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels } from '../kernels/kernels.js';
import { TsKernels } from '../kernels/ts_kernels.js';
import { writeSafetensors, type TensorToWrite } from '../checkpoint/safetensors.js';
import { Gemma3nTextModel } from '../model/text_model.js';
import { GEMMA4_GOLDEN_TOLERANCE, GOLDEN_TOLERANCE, traceText } from './text.js';
import { isGemma4Config } from '../checkpoint/gemma4_config.js';
import { Gemma4TextModel } from '../model/gemma4_text_model.js';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { parseModelConfig } from '../checkpoint/config.js';
import { traceAudioFiles } from '../encoders/audio/index.js';
import { GEMMA3N_VISION, MobileNetV5Encoder, prefixed, traceVision, VISION_TOWER_PREFIX } from '../encoders/vision/index.js';
import { Towers, type MediaInput } from '../engine/towers.js';
import { Gemma4Towers } from '../engine/gemma4_towers.js';

export interface TraceRunOptions {
  /** Token ids to run (no BOS is added). */
  ids: number[];
  /** --weights: a .safetensors file or index inside the folder. */
  weightsFile?: string;
  /** Default: TsKernels (the float32 reference, the same bits in every runtime). */
  kernels?: Kernels;
  onProgress?: (done: number, total: number) => void;
  /** Images / audio whose soft tokens replace the placeholder ids in `ids` (full gemma3n / gemma4 folders). */
  media?: MediaInput[];
  /** Gemma 4: the image soft-token budget (70, 140, 280 = default, 560, 1120). */
  imageSoftTokens?: number;
  /** Every named intermediate (traceText's `all`), and greedy decode steps after the ids (`steps`). */
  all?: boolean;
  steps?: number;
}

/**
 * Loads the model, traces it on the ids and returns the tensors (for --compare) and file bytes.
 * With media, `inputs_embeds` is the merged embedding (text, hard and soft tokens).
 */
export async function traceRun(
  folder: FileProvider,
  opts: TraceRunOptions,
): Promise<{ tensors: TensorToWrite[]; bytes: Uint8Array; tolerances: Readonly<Record<string, number>> }> {
  const kernels = opts.kernels ?? new TsKernels();
  let raw: unknown = null;
  try {
    raw = JSON.parse(await folder.readText('config.json'));
  } catch {
    /* the loader below reports it */
  }
  if (isGemma4Config(raw)) {
    // Gemma 4: the text face, with any images/audio merged at their placeholder ids
    // (the ids hold <|image|> / <|audio|> as many times as the media give soft tokens).
    const { model, modelConfig, checkpoint } = await Gemma4TextModel.load(folder, kernels, { weightsFile: opts.weightsFile, onProgress: opts.onProgress });
    try {
      let merged: Float32Array | undefined;
      if (opts.media?.length) {
        const towers = new Gemma4Towers(checkpoint, modelConfig, kernels, { imageSoftTokens: opts.imageSoftTokens });
        merged = await (await towers.prepare(opts.media)).embed(model, opts.ids);
        towers.release();
      }
      const tensors = await traceText(model, opts.ids, merged, { all: opts.all, steps: opts.steps });
      return { tensors, bytes: writeSafetensors(tensors), tolerances: GEMMA4_GOLDEN_TOLERANCE };
    } finally {
      await checkpoint.close();
    }
  }
  const { model, modelConfig, checkpoint } = await Gemma3nTextModel.load(folder, kernels, { weightsFile: opts.weightsFile, onProgress: opts.onProgress });
  try {
    let merged: Float32Array | undefined;
    if (modelConfig.modelType === 'gemma3n') {
      const towers = await Towers.load(checkpoint, modelConfig, kernels);
      model.hardEmbedders = [towers.visionEmbedder, towers.audioEmbedder].filter((e) => e !== null);
      if (opts.media?.length) merged = await towers.mergedEmbeddings(model, opts.ids, opts.media);
    } else if (opts.media?.length) {
      throw new Error(`${folder.location}: images/audio need a full gemma3n config (model_type gemma3n), this is ${modelConfig.modelType}`);
    }
    const tensors = await traceText(model, opts.ids, merged, { all: opts.all, steps: opts.steps });
    return { tensors, bytes: writeSafetensors(tensors), tolerances: GOLDEN_TOLERANCE };
  } finally {
    await checkpoint.close();
  }
}

/** The towers' own faces (audio.*, vision.* names) are Gemma 3n's; a Gemma 4 folder is told how to trace its media. */
async function refuseGemma4Tower(folder: FileProvider, tower: 'audio' | 'vision'): Promise<void> {
  let raw: unknown = null;
  try {
    raw = JSON.parse(await folder.readText('config.json'));
  } catch {
    return; /* the tower's loader reports it */
  }
  if (isGemma4Config(raw))
    throw new Error(
      `${folder.location}: trace of the ${tower} tower alone is Gemma 3n's face; for Gemma 4 give --ids holding the ${tower === 'vision' ? '<|image|>' : '<|audio|>'} placeholders with the media (their soft tokens are merged and traced as inputs_embeds)`,
    );
}

/** The audio face: clips (WAV bytes) batched as the feature extractor does → audio.* tensors. */
export async function traceAudioRun(
  folder: FileProvider,
  files: { name: string; bytes: Uint8Array }[],
  kernels: Kernels = new TsKernels(),
): Promise<{ tensors: TensorToWrite[]; bytes: Uint8Array }> {
  await refuseGemma4Tower(folder, 'audio');
  const traced = await traceAudioFiles(folder, files, kernels);
  const tensors = [...traced].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }) as TensorToWrite);
  return { tensors, bytes: writeSafetensors(tensors) };
}

/**
 * The vision face: one image (file bytes) or preprocessed pixel_values [1,3,768,768] →
 * vision.pixel_values, vision.soft_tokens [1,256,2048] and, with embed_vision weights,
 * vision.embed_soft. The text part of the config is not loaded.
 */
export async function traceVisionRun(
  folder: FileProvider,
  input: { image: Uint8Array } | { pixelValues: Float32Array },
  kernels: Kernels = new TsKernels(),
): Promise<{ tensors: TensorToWrite[]; bytes: Uint8Array }> {
  await refuseGemma4Tower(folder, 'vision');
  const config = parseModelConfig(await folder.readText('config.json'), `${folder.location}/config.json`);
  if (!config.visionConfig) throw new Error(`${folder.location}/config.json: no vision_config (not a full gemma3n checkpoint)`);
  const store = await Checkpoint.open(folder);
  try {
    const towers = await Towers.load(store, config, kernels);
    const encoder = await MobileNetV5Encoder.load(prefixed(store, VISION_TOWER_PREFIX), kernels, GEMMA3N_VISION);
    const traced = traceVision('image' in input ? { imageBytes: input.image } : input, { encoder, embedder: towers.visionEmbedder });
    const tensors = [...traced].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }) as TensorToWrite);
    return { tensors, bytes: writeSafetensors(tensors) };
  } finally {
    await store.close();
  }
}

/** The subset of trace flags every runtime understands: --model DIR --ids a,b,c --out FILE [--weights F] [--all] [--steps N]. */
export interface TraceArgs {
  model?: string;
  ids: number[];
  out: string;
  weights?: string;
  /** Every named intermediate (traceText's `all`). */
  all?: boolean;
  /** Greedy decode steps after the ids. */
  steps?: number;
}

/** Parses trace flags without node:util (Deno and the browser driver use it). */
export function parseTraceArgs(argv: readonly string[]): TraceArgs {
  const v: Record<string, string> = {};
  let all = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--all') {
      all = true;
      continue;
    }
    const m = /^--(model|ids|out|weights|steps)(?:=(.*))?$/.exec(argv[i]);
    if (!m)
      throw new Error(
        `trace: unknown or unsupported argument '${argv[i]}' (this runner takes --model DIR --ids 2,105,9 --out FILE.safetensors [--weights FILE] [--all] [--steps N])`,
      );
    const val = m[2] ?? argv[++i];
    if (val === undefined) throw new Error(`trace: --${m[1]} needs a value`);
    v[m[1]] = val;
  }
  if (v.ids === undefined) throw new Error('trace: --ids is required');
  if (v.out === undefined) throw new Error('trace: --out FILE.safetensors is required');
  const ids = v.ids
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((p) => {
      if (!/^\d+$/.test(p)) throw new Error(`--ids: '${p}' is not a non-negative integer token id`);
      return Number(p);
    });
  if (ids.length === 0) throw new Error(`--ids: expected a comma-separated list of token ids, got '${v.ids}'`);
  if (v.steps !== undefined && !/^\d+$/.test(v.steps)) throw new Error(`--steps: expected a non-negative integer, got '${v.steps}'`);
  return { model: v.model, ids, out: v.out, weights: v.weights, ...(all ? { all } : {}), ...(v.steps !== undefined ? { steps: Number(v.steps) } : {}) };
}

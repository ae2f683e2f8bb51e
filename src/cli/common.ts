/** What every command shares: flag parsing, model folder resolution, kernel choice, loading. */
import { existsSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Gemma3n } from '../engine/engine.js';
import type { Kernels } from '../kernels/kernels.js';
import { TsKernels } from '../kernels/ts_kernels.js';
import { createNodeWasmKernels } from '../node/wasm_host.js';
import { ensureDefaultModel } from '../node/default_model.js';
import { NodeFolder } from '../node/fs_folder.js';
import { parseIntFlag, str, UsageError, type Values } from './args.js';

export { str, type Values };
import { parseModelConfig } from '../checkpoint/config.js';
import { familyOf } from '../engine/model_family.js';
import { sliceSpecFromFlags } from './slice_flags.js';
import { progressBar } from './progress.js';
import { isGgufPath, openGgufModel } from './gguf.js';

export function parse(argv: string[], options: ParseArgsConfig['options']): Values {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export const modelFlags = {
  model: { type: 'string' },
  weights: { type: 'string' },
  kernels: { type: 'string' },
  threads: { type: 'string' },
  q4: { type: 'boolean' },
  'stream-ple': { type: 'boolean' },
  'ple-cache-rows': { type: 'string' },
  preset: { type: 'string' },
  'layers-to-skip': { type: 'string' },
  ffn: { type: 'string' },
  'image-soft-tokens': { type: 'string' },
} as const;

/** --image-soft-tokens N: Gemma 4's per-image soft-token budget (70, 140, 280, 560, 1120). */
export function imageSoftTokens(v: Values): number | undefined {
  return v['image-soft-tokens'] === undefined ? undefined : parseIntFlag(str(v, 'image-soft-tokens'), '--image-soft-tokens', 280, 1);
}

/**
 * --model DIR, or the embedded default model (generated on first use). `needs: 'tokenizer'`
 * (the tokenize command) accepts a folder with only tokenizer files, as tokenizer repositories
 * are published; every other command needs a model folder (config.json).
 */
export async function resolveModelDir(v: Values, needs: 'model' | 'tokenizer' = 'model'): Promise<string> {
  const dir = str(v, 'model');
  if (dir === undefined) {
    const d = await ensureDefaultModel((m) => process.stderr.write(m + '\n'));
    process.stderr.write('[embedded default model: tiny Gemma 3n with RANDOM weights — its text is meaningless; --model DIR runs a real checkpoint]\n');
    return d;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--model: '${dir}' is not a folder`);
  if (needs === 'tokenizer') {
    if (!['tokenizer.json', 'tokenizer.model'].some((f) => existsSync(`${dir}/${f}`)))
      throw new UsageError(`--model: '${dir}' has no tokenizer.json or tokenizer.model`);
    return dir;
  }
  if (!existsSync(`${dir}/config.json`)) throw new UsageError(`--model: '${dir}' has no config.json (is it a Gemma 3n model folder?)`);
  return dir;
}

/**
 * --kernels wasm (default: WASM SIMD, threads where available, falling back to TS when the
 * .wasm build is missing) or ts (the plain-TypeScript reference).
 */
export async function makeKernels(v: Values, defaultName: 'wasm' | 'ts' = 'wasm'): Promise<Kernels> {
  const name = str(v, 'kernels') ?? defaultName;
  const threads = v.threads === undefined ? undefined : parseIntFlag(str(v, 'threads'), '--threads', 1, 1);
  if (name === 'ts') {
    if (v.q4) throw new UsageError('--q4 needs --kernels wasm');
    return new TsKernels();
  }
  if (name !== 'wasm') throw new UsageError(`--kernels: unknown backend '${name}' (available: wasm, ts)`);
  try {
    return await createNodeWasmKernels({ threads });
  } catch (e) {
    if (str(v, 'kernels') === 'wasm' || v.q4)
      throw new Error(`--kernels wasm: cannot start the WASM kernels (${(e as Error).message}); run npm run build:wasm`);
    process.stderr.write(`note: WASM kernels unavailable (${(e as Error).message}); using the TypeScript kernels\n`);
    return new TsKernels();
  }
}

/** The weight format for the model's linears: --q4 quantizes them to int4 on load. */
export function weightFormat(v: Values): 'f32' | 'q4' {
  return v.q4 ? 'q4' : 'f32';
}

export async function loadEngine(v: Values): Promise<Gemma3n> {
  const gguf = str(v, 'model');
  const dir = isGgufPath(gguf) ? gguf : await resolveModelDir(v);
  const folder = isGgufPath(gguf) ? await openGgufModel(gguf) : new NodeFolder(dir); // a .gguf file reads like a folder
  const configText = await folder.readText('config.json');
  const gemma4 = familyOf(configText) === 'gemma4';
  if (gemma4 && ['preset', 'layers-to-skip', 'ffn'].some((f) => v[f] !== undefined))
    throw new UsageError(`--preset / --layers-to-skip / --ffn: MatFormer slicing is a Gemma 3n feature; ${dir} is a Gemma 4 checkpoint`);
  const layers = () => parseModelConfig(configText, `${dir}/config.json`).text.numHiddenLayers;
  return Gemma3n.load(folder, {
    kernels: await makeKernels(v),
    format: weightFormat(v),
    weightsFile: str(v, 'weights'),
    onProgress: progressBar('loading'),
    ple: v['stream-ple'] ? 'stream' : undefined, // packed v2 folders stream by default
    pleCacheRows: v['ple-cache-rows'] === undefined ? undefined : parseIntFlag(str(v, 'ple-cache-rows'), '--ple-cache-rows', 1, 1),
    slice: sliceSpecFromFlags(v, layers),
    imageSoftTokens: imageSoftTokens(v),
  });
}

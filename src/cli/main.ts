/**
 * The `gemma3n` command line. Each command is a small function; model folders are read
 * through the Node adapter (src/node), everything else is the runtime-neutral engine.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TsKernels } from '../kernels/ts_kernels.js';
import type { Kernels } from '../kernels/kernels.js';
import { writeSafetensors } from '../model/safetensors.js';
import { Gemma3nTextModel } from '../model/text_model.js';
import { generateTokens, type GenerationMetrics } from '../engine/token_stream.js';
import { ensureDefaultModel } from '../node/default_model.js';
import { NodeFileSource, NodeFolder } from '../node/fs_folder.js';
import { SafetensorsFile } from '../model/safetensors.js';
import { parseIds, parseIntFlag, parseNumFlag, UsageError } from './args.js';
import { progressBar } from './progress.js';
import { compareWithGolden, traceText } from './trace.js';
import { existsSync, statSync } from 'node:fs';

const USAGE = `gemma3n — Gemma 3n inference in TypeScript

Usage:
  gemma3n generate [--model DIR] (--ids 2,105,9 | --prompt TEXT) [--max-tokens N] [--greedy]
                   [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--json]
  gemma3n trace    --model DIR --ids 2,105,9 --out FILE.safetensors [--compare GOLDEN.safetensors] [--tolerance X]

Without --model, the embedded default model is used (tiny, RANDOM weights, real Gemma vocabulary).
Common options: --kernels ts   --weights FILE (a .safetensors file or index inside the folder)
`;

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

function parse(argv: string[], options: ParseArgsConfig['options']): Values {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

const modelFlags = {
  model: { type: 'string' },
  weights: { type: 'string' },
  kernels: { type: 'string' },
} as const;

async function resolveModelDir(v: Values): Promise<string> {
  const dir = v.model as string | undefined;
  if (dir === undefined) return ensureDefaultModel((m) => process.stderr.write(m + '\n'));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--model: '${dir}' is not a folder`);
  if (!existsSync(`${dir}/config.json`)) throw new UsageError(`--model: '${dir}' has no config.json (is it a Gemma 3n model folder?)`);
  return dir;
}

function makeKernels(v: Values): Kernels {
  const name = (v.kernels as string | undefined) ?? 'ts';
  if (name === 'ts') return new TsKernels();
  throw new UsageError(`--kernels: unknown backend '${name}' (available: ts)`);
}

async function loadModel(v: Values): Promise<{ model: Gemma3nTextModel; dir: string }> {
  const dir = await resolveModelDir(v);
  const { model, checkpoint } = await Gemma3nTextModel.load(new NodeFolder(dir), makeKernels(v), {
    weightsFile: v.weights as string | undefined,
    onProgress: progressBar('loading'),
  });
  await checkpoint.close(); // every text weight is in memory now
  return { model, dir };
}

async function cmdGenerate(argv: string[]): Promise<number> {
  const v = parse(argv, {
    ...modelFlags,
    ids: { type: 'string' },
    prompt: { type: 'string' },
    'max-tokens': { type: 'string' },
    greedy: { type: 'boolean' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'min-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (v.help) { process.stdout.write(USAGE); return 0; }
  if (v.ids === undefined && v.prompt === undefined) throw new UsageError('generate: give --ids or --prompt');
  if (v.prompt !== undefined) throw new UsageError('generate: --prompt needs the tokenizer, not available yet in this build; use --ids');
  const ids = parseIds(v.ids as string);
  const maxTokens = parseIntFlag(v['max-tokens'] as string | undefined, '--max-tokens', 32);
  const { model } = await loadModel(v);
  const metrics: Partial<GenerationMetrics> = {};
  const out: number[] = [];
  const json = v.json === true;
  const stream = generateTokens(model, ids, {
    maxTokens,
    temperature: v.greedy ? 0 : parseNumFlag(v.temperature as string | undefined, '--temperature') ?? 0,
    topK: parseIntFlag(v['top-k'] as string | undefined, '--top-k', 0),
    topP: parseNumFlag(v['top-p'] as string | undefined, '--top-p'),
    minP: parseNumFlag(v['min-p'] as string | undefined, '--min-p'),
    repetitionPenalty: parseNumFlag(v['repetition-penalty'] as string | undefined, '--repetition-penalty'),
    seed: v.seed === undefined ? undefined : parseIntFlag(v.seed as string, '--seed', 0),
    // With raw ids, EOS does not stop generation: exactly max-tokens ids come out.
    stopTokens: [],
  }, metrics);
  for await (const id of stream) {
    out.push(id);
    if (!json) process.stdout.write(`${id} `);
  }
  if (!json) process.stdout.write('\n');
  const m = metrics as GenerationMetrics;
  const summary = {
    generated_ids: out,
    prompt_tokens: m.promptTokens,
    generated_tokens: m.generatedTokens,
    prefill_ms: round(m.prefillMs),
    decode_ms: round(m.decodeMs),
    time_to_first_token_ms: round(m.timeToFirstTokenMs),
    prefill_tok_s: round(m.prefillTokPerS),
    decode_tok_s: round(m.decodeTokPerS),
    peak_rss_mb: round(process.memoryUsage().rss / 2 ** 20),
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`prefill ${summary.prefill_tok_s} tok/s, decode ${summary.decode_tok_s} tok/s, first token ${summary.time_to_first_token_ms} ms\n`);
  return 0;
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function cmdTrace(argv: string[]): Promise<number> {
  const v = parse(argv, { ...modelFlags, ids: { type: 'string' }, out: { type: 'string' }, compare: { type: 'string' }, tolerance: { type: 'string' } });
  if (v.help) { process.stdout.write(USAGE); return 0; }
  if (v.ids === undefined) throw new UsageError('trace: --ids is required');
  if (v.out === undefined && v.compare === undefined) throw new UsageError('trace: give --out FILE.safetensors and/or --compare GOLDEN.safetensors');
  const ids = parseIds(v.ids as string);
  const { model } = await loadModel(v);
  const tensors = await traceText(model, ids);
  if (v.out !== undefined) {
    await writeFile(v.out as string, writeSafetensors(tensors));
    process.stderr.write(`wrote ${tensors.length} tensors to ${v.out as string}\n`);
  }
  if (v.compare === undefined) return 0;
  const golden = await SafetensorsFile.open(await NodeFileSource.open(v.compare as string));
  const rows = await compareWithGolden(tensors, golden, parseNumFlag(v.tolerance as string | undefined, '--tolerance'));
  let ok = true;
  for (const r of rows) {
    ok &&= r.ok;
    process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(20)} max_abs_diff ${Number.isNaN(r.maxAbsDiff) ? '-' : r.maxAbsDiff.toExponential(3)}  tol ${r.tolerance.toExponential(1)}${r.goldenName ? `  vs ${r.goldenName}` : ''}${r.note ? `  (${r.note})` : ''}\n`);
  }
  await golden.source.close?.();
  return ok ? 0 : 1;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  generate: cmdGenerate,
  trace: cmdTrace,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 1 : 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    process.stderr.write(`gemma3n: unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`gemma3n ${cmd}: ${err.message}\n`);
    if (process.env.GEMMA3N_DEBUG) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

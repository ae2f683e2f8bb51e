/**
 * The `gemma3n` command line. Each command lives in src/cli/commands/; model folders are read
 * through the Node adapter (src/node), everything else is the runtime-neutral engine.
 */
import { UsageError } from './args.js';

export const USAGE = `gemma3n — Gemma 3n inference in TypeScript

Usage:
  gemma3n generate [--model DIR] (--ids 2,105,9 | --prompt TEXT [--system TEXT] [--raw])
                   [--max-tokens N] [--greedy | --temperature T --top-k K --top-p P --min-p P --seed S]
                   [--repetition-penalty R] [--stop STR]... [--json]
  gemma3n chat     [--model DIR] [--system TEXT] [sampling flags as for generate]
  gemma3n trace    --model DIR --ids 2,105,9 --out FILE.safetensors [--compare GOLDEN.safetensors] [--tolerance X]
  gemma3n tokenize --model DIR --jsonl FILE [--decode] [--parse-special] [--skip-special]
  gemma3n inspect  [--model DIR] [--json]
  gemma3n quantize --model DIR --out DIR [--keep-f32 REGEX]   (packed int4 checkpoint, loads without re-quantizing)
  gemma3n export-gguf --model DIR --out FILE.gguf [--type q4_0|q8_0|f16|f32]   (the text decoder for llama.cpp)
  gemma3n slice    --model DIR (--preset NAME | --layers-to-skip 20,21 --ffn 8192*30) --out DIR   [--list-presets]
  gemma3n serve    [--model DIR] [--port 8080] [--host 127.0.0.1] [--max-queue 16] [--max-body-mb 20] [--max-tokens 1024]

--model also takes a gemma3n GGUF file (llama.cpp's converter / llama-quantize output) for generate, chat, quantize, export-gguf.
Without --model, the embedded default model is used (tiny, RANDOM weights, real Gemma vocabulary).
Common options: --kernels ts   --weights FILE (a .safetensors file or index inside the folder)
Set GEMMA3N_DEBUG=1 for stack traces.
`;

type Command = (argv: string[]) => Promise<number>;

/** Each command's module is imported when it runs (start-up imports only what `generate` needs, not the server or the GGUF writer). */
const COMMANDS: Record<string, () => Promise<Command>> = {
  generate: async () => (await import('./commands/generate.js')).cmdGenerate,
  chat: async () => (await import('./commands/chat.js')).cmdChat,
  trace: async () => (await import('./commands/trace.js')).cmdTrace,
  tokenize: async () => (await import('./commands/tokenize.js')).cmdTokenize,
  inspect: async () => (await import('./commands/inspect.js')).cmdInspect,
  slice: async () => (await import('./commands/slice.js')).cmdSlice,
  quantize: async () => (await import('./commands/quantize.js')).cmdQuantize,
  serve: async () => (await import('./commands/serve.js')).cmdServe,
  'export-gguf': async () => (await import('./commands/export_gguf.js')).cmdExportGguf,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE);
    return cmd === undefined ? 1 : 0;
  }
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!command) {
    process.stderr.write(`gemma3n: unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const run = await command();
    return await run(rest);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`gemma3n ${cmd}: ${err.message}\n`);
    if (process.env.GEMMA3N_DEBUG) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

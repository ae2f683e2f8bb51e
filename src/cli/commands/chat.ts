/** `gemma3n chat`: an interactive, streaming, multi-turn conversation on the terminal. */
import { createInterface } from 'node:readline/promises';
import { loadEngine, modelFlags, parse, str } from '../common.js';
import { samplingFlags, samplingOptions } from './generate.js';

export async function cmdChat(argv: string[]): Promise<number> {
  const v = parse(argv, { ...modelFlags, ...samplingFlags, system: { type: 'string' } });
  const opts = samplingOptions(v, 256);
  const g3n = await loadEngine(v);
  if (!g3n.tokenizer) throw new Error('chat needs a tokenizer (tokenizer.json or tokenizer.model) in the model folder');
  const chat = g3n.chat(str(v, 'system'));
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  process.stderr.write('Type a message (empty line or Ctrl-D to quit, Ctrl-C stops a reply).\n');
  let abort: AbortController | null = null;
  rl.on('SIGINT', () => (abort ? abort.abort() : rl.close()));
  try {
    for (;;) {
      let line: string;
      try {
        line = await rl.question('> ');
      } catch {
        break; // input closed
      }
      if (line.trim() === '') break;
      abort = new AbortController();
      const r = await chat.send(line, { ...opts, signal: abort.signal, onText: (t) => process.stdout.write(t) });
      abort = null;
      process.stdout.write('\n');
      process.stderr.write(
        `[${r.metrics.generatedTokens} tokens, prefill ${r.metrics.prefillTokens} new of ${r.metrics.promptTokens}, ${r.metrics.decodeTokPerS.toFixed(1)} tok/s]\n`,
      );
    }
  } finally {
    rl.close();
  }
  return 0;
}

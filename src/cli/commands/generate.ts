/** `gemma3n generate`: one completion from token ids or a prompt, streamed to stdout. */
import type { GenerateOptions, PromptInput } from '../../engine/engine.js';
import type { ChatContentPart } from '../../tokenizer/index.js';
import { mediaFlags, readMedia } from '../media.js';
import { parseIds, parseIntFlag, parseNumFlag, UsageError } from '../args.js';
import { formatExplain } from '../../trace/explain_format.js';
import type { StepExplain } from '../../model/explain.js';
import { loadEngine, modelFlags, parse, str, type Values } from '../common.js';
import { structuredFlags, structuredOptions } from '../structured_flags.js';

export const samplingFlags = {
  'max-tokens': { type: 'string' },
  greedy: { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
} as const;

export function samplingOptions(v: Values, defaultMax: number): GenerateOptions {
  return {
    maxTokens: parseIntFlag(str(v, 'max-tokens'), '--max-tokens', defaultMax),
    temperature: v.greedy ? 0 : (parseNumFlag(str(v, 'temperature'), '--temperature') ?? 0),
    topK: parseIntFlag(str(v, 'top-k'), '--top-k', 0),
    topP: parseNumFlag(str(v, 'top-p'), '--top-p'),
    minP: parseNumFlag(str(v, 'min-p'), '--min-p'),
    repetitionPenalty: parseNumFlag(str(v, 'repetition-penalty'), '--repetition-penalty'),
    seed: v.seed === undefined ? undefined : parseIntFlag(str(v, 'seed'), '--seed', 0),
    stop: v.stop as string[] | undefined,
  };
}

const round = (x: number): number => Math.round(x * 100) / 100;

export async function cmdGenerate(argv: string[]): Promise<number> {
  const v = parse(argv, {
    ...modelFlags,
    ...samplingFlags,
    ...mediaFlags,
    ...structuredFlags,
    ids: { type: 'string' },
    prompt: { type: 'string' },
    system: { type: 'string' },
    raw: { type: 'boolean' },
    json: { type: 'boolean' },
    explain: { type: 'boolean' },
    'stream-ple': { type: 'boolean' },
  });
  if (v.ids === undefined && v.prompt === undefined) throw new UsageError('generate: give --ids 2,105,9 or --prompt TEXT');
  if (v.ids !== undefined && v.prompt !== undefined) throw new UsageError('generate: give --ids or --prompt, not both');
  const opts = { ...samplingOptions(v, 32), ...structuredOptions(v) };
  const g3n = await loadEngine(v);
  // Raw ids: no BOS added and EOS does not stop, so exactly max-tokens ids come out.
  // A prompt goes through the chat template as one user turn unless --raw.
  const media = await readMedia(v);
  let input: PromptInput;
  if (v.ids !== undefined) input = { ids: parseIds(str(v, 'ids')!), media };
  else if (v.raw) {
    if (media.length > 0) throw new UsageError('generate: --raw prompts cannot carry images or audio (use the chat form or --ids)');
    input = str(v, 'prompt')!;
  } else {
    // The user turn: media first (as the Gemma 3n examples do), then the text.
    const parts: ChatContentPart[] = media.map((m) =>
      m.kind === 'image' ? { type: 'image', image: m.image, pixelValues: m.pixelValues } : { type: 'audio', audio: m.audio, features: m.features },
    );
    parts.push({ type: 'text', text: str(v, 'prompt')! });
    input = [...(v.system ? [{ role: 'system', content: str(v, 'system')! }] : []), { role: 'user', content: media.length ? parts : str(v, 'prompt')! }];
  }
  const json = v.json === true;
  const showText = !json && g3n.tokenizer !== null;
  const explained: (StepExplain & { token: number })[] = [];
  const result = await g3n.generate(input, {
    ...opts,
    onText: showText ? (t) => process.stdout.write(t) : undefined,
    onExplain: v.explain
      ? (e, token) => {
          if (json) explained.push({ ...e, token });
          else process.stderr.write('\n' + formatExplain(e, token, g3n.tokenizer?.idToPiece(token)) + '\n');
        }
      : undefined,
  });
  if (!json && !showText) process.stdout.write(result.ids.join(' '));
  if (!json) process.stdout.write('\n');
  const m = result.metrics;
  const summary = {
    generated_ids: result.ids,
    text: g3n.tokenizer ? result.text : undefined,
    prompt_tokens: m.promptTokens,
    generated_tokens: m.generatedTokens,
    stop_reason: m.stopReason,
    prefill_ms: round(m.prefillMs),
    decode_ms: round(m.decodeMs),
    time_to_first_token_ms: round(m.timeToFirstTokenMs),
    prefill_tok_s: round(m.prefillTokPerS),
    decode_tok_s: round(m.decodeTokPerS),
    peak_rss_mb: m.peakMemoryMb === null ? null : round(m.peakMemoryMb),
    kernels: g3n.model.kernels.name,
    explain: v.explain ? explained : undefined,
    tool_calls: result.toolCalls,
  };
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  else
    process.stderr.write(
      `[${m.promptTokens} prompt tokens, ${m.generatedTokens} generated] prefill ${summary.prefill_tok_s} tok/s, decode ${summary.decode_tok_s} tok/s, first token ${summary.time_to_first_token_ms} ms, rss ${summary.peak_rss_mb} MB\n`,
    );
  return 0;
}

/**
 * A Gemma 4 golden folder (512-id vocabulary, no tokenizer) with a tiny Gemma-4-style
 * tokenizer.json added, so chat, the chat template, stop tokens and the server can run on the
 * golden models. The control pieces sit at the ids the golden configs and the multimodal
 * golden's prompt layout use: <pad> 0, <eos> 1, <bos> 2, <|turn> 105, <turn|> 106, "\n" 107,
 * "\n\n" 108, <|image> 250, <|audio> 251, <|image|> 500, <|audio|> 501, <image|> 502,
 * <audio|> 503, <|video|> 504. Every other id is a character or a byte (byte fallback).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { GOLDEN } from '../helpers.js';

export const G4 = {
  pad: 0,
  eos: 1,
  bos: 2,
  unk: 3,
  turn: 105,
  endTurn: 106,
  nl: 107,
  nl2: 108,
  boi: 250,
  boa: 251,
  image: 500,
  audio: 501,
  eoi: 502,
  eoa: 503,
  video: 504,
} as const;

export function tinyGemma4TokenizerJson(): object {
  const control: [number, string][] = [
    [G4.pad, '<pad>'],
    [G4.eos, '<eos>'],
    [G4.bos, '<bos>'],
    [G4.unk, '<unk>'],
    [G4.turn, '<|turn>'],
    [G4.endTurn, '<turn|>'],
    [G4.boi, '<|image>'],
    [G4.boa, '<|audio>'],
    [G4.image, '<|image|>'],
    [G4.audio, '<|audio|>'],
    [G4.eoi, '<image|>'],
    [G4.eoa, '<audio|>'],
    [G4.video, '<|video|>'],
  ];
  const vocab: Record<string, number> = { '\n': G4.nl, '\n\n': G4.nl2 };
  for (const [id, piece] of control) vocab[piece] = id;
  const used = new Set(Object.values(vocab));
  const free: number[] = [];
  for (let id = 0; id < 512; id++) if (!used.has(id)) free.push(id);
  const chars = ['\u2581', ...Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i))];
  for (const c of chars) vocab[c] = free.shift()!;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = free.shift()!;
  return {
    version: '1.0',
    added_tokens: control.map(([id, content]) => ({ id, content, special: true, single_word: false, lstrip: false, rstrip: false, normalized: false })),
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    pre_tokenizer: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: { type: 'BPE', vocab, merges: [['\n', '\n']], unk_token: '<unk>', byte_fallback: true, fuse_unk: true },
  };
}

/** test/golden/gemma4/NAME's config and weights, plus the tiny tokenizer. */
export function gemma4ChatFolder(name: 'text-tiny-a' | 'text-tiny-b' | 'multimodal'): MemoryFolder {
  const dir = join(GOLDEN, 'gemma4', name);
  return new MemoryFolder(
    new Map<string, Uint8Array>([
      ['config.json', readFileSync(join(dir, 'config.json'))],
      ['model.safetensors', readFileSync(join(dir, 'model.safetensors'))],
      ['tokenizer.json', new TextEncoder().encode(JSON.stringify(tinyGemma4TokenizerJson()))],
    ]),
    `<gemma4 ${name} + tiny tokenizer>`,
  );
}

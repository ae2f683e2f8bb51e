/** Malformed tokenizer files and loader selection, on a hand-written miniature tokenizer.json. */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GemmaTokenizer, loadTokenizerFromFiles } from '../../src/tokenizer/index.js';

const bytePieces = Object.fromEntries(Array.from({ length: 256 }, (_, b) => [`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 10 + b]));

/** A valid Gemma-shaped tokenizer.json with a 5-piece vocabulary plus bytes. */
function mini(): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<pad>', special: true, normalized: false },
      { id: 1, content: '<eos>', special: true, normalized: false },
      { id: 2, content: '<bos>', special: true, normalized: false },
      { id: 3, content: '<unk>', special: true, normalized: false },
      { id: 4, content: '<start_of_turn>', special: true, normalized: false },
    ],
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    pre_tokenizer: { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }] },
    model: {
      type: 'BPE',
      unk_token: '<unk>',
      byte_fallback: true,
      fuse_unk: true,
      vocab: { '<pad>': 0, '<eos>': 1, '<bos>': 2, '<unk>': 3, '<start_of_turn>': 4, a: 5, b: 6, ab: 7, '▁': 8, '▁ab': 9, ...bytePieces },
      merges: [
        ['a', 'b'],
        ['▁', 'ab'],
      ],
    },
  };
}

describe('tokenizer.json validation', () => {
  it('accepts the miniature file as text or object', () => {
    for (const src of [mini(), JSON.stringify(mini())]) {
      const t = GemmaTokenizer.fromTokenizerJson(src);
      expect(t.vocabSize).toBe(266);
      expect(t.encode('ab ab')).toEqual([7, 9]);
      expect(t.encode('ba c')).toEqual([6, 5, 8, 10 + 0x63]); // 'c' is not in the vocabulary: byte fallback
      expect(t.encode('<start_of_turn>ab', { parseSpecial: true })).toEqual([4, 7]);
      expect(t.decode([7, 9, 10 + 0x63])).toBe('ab abc');
    }
  });

  const broken: Array<[string, (j: Record<string, any>) => unknown, RegExp]> = [
    ['not JSON', () => '{"model": ', /tokenizer\.json: not valid JSON/],
    ['not an object', () => [1, 2], /top level must be a JSON object/],
    [
      'no model',
      (j) => {
        delete j.model;
        return j;
      },
      /missing "model" object/,
    ],
    [
      'unigram',
      (j) => {
        j.model.type = 'Unigram';
        return j;
      },
      /model\.type is "Unigram"; only "BPE"/,
    ],
    [
      'vocab not an object',
      (j) => {
        j.model.vocab = [1];
        return j;
      },
      /model\.vocab must be an object/,
    ],
    [
      'bad id',
      (j) => {
        j.model.vocab.a = 'five';
        return j;
      },
      /model\.vocab\["a"\] must be a non-negative integer id/,
    ],
    [
      'duplicate id',
      (j) => {
        j.model.vocab.b = 5;
        return j;
      },
      /id 5 is used by both "a" and "b"/,
    ],
    [
      'merges missing',
      (j) => {
        delete j.model.merges;
        return j;
      },
      /model\.merges must be an array/,
    ],
    [
      'merge of unknown piece',
      (j) => {
        j.model.merges.push(['zz', 'a']);
        return j;
      },
      /model\.merges\[2\]: "zz" is not in model\.vocab/,
    ],
    [
      'merge result missing',
      (j) => {
        j.model.merges.push(['b', 'a']);
        return j;
      },
      /model\.merges\[2\]: merged piece "ba" is not in model\.vocab/,
    ],
    [
      'bad merge shape',
      (j) => {
        j.model.merges.push(42);
        return j;
      },
      /model\.merges\[2\] must be a \[left, right\] pair/,
    ],
    [
      'missing byte piece',
      (j) => {
        delete j.model.vocab['<0x7F>'];
        return j;
      },
      /byte_fallback is true but <0x7F> is not in model\.vocab/,
    ],
    [
      'added token clash',
      (j) => {
        j.added_tokens.push({ id: 5, content: '<x>', special: true });
        return j;
      },
      /added_tokens\[5\]: id 5 is "a" in model\.vocab but "<x>" here/,
    ],
    [
      'added token without id',
      (j) => {
        j.added_tokens.push({ content: '<x>' });
        return j;
      },
      /added_tokens\[5\]\.id must be a non-negative integer/,
    ],
    [
      'regex normalizer',
      (j) => {
        j.normalizer = { type: 'Replace', pattern: { Regex: '\\s' }, content: '▁' };
        return j;
      },
      /normalizer\.pattern: Regex patterns are not supported/,
    ],
    [
      'unknown normalizer',
      (j) => {
        j.normalizer = { type: 'BertNormalizer' };
        return j;
      },
      /normalizer\.type "BertNormalizer" is not supported/,
    ],
    [
      'unknown pre-tokenizer',
      (j) => {
        j.pre_tokenizer = { type: 'ByteLevel' };
        return j;
      },
      /pre_tokenizer\.type "ByteLevel" is not supported/,
    ],
  ];
  for (const [name, mutate, message] of broken) {
    it(`rejects ${name} with a clear message`, () => {
      expect(() => GemmaTokenizer.fromTokenizerJson(mutate(mini()) as object)).toThrow(message);
    });
  }
});

describe('loadTokenizerFromFiles', () => {
  const spm = new Uint8Array(readFileSync(fileURLToPath(new URL('../fixtures/tokenizer/spm-bpe.model', import.meta.url))));

  it('prefers tokenizer.json over tokenizer.model', () => {
    expect(loadTokenizerFromFiles({ tokenizerJson: JSON.stringify(mini()), tokenizerModel: spm }).vocabSize).toBe(266);
    expect(loadTokenizerFromFiles({ tokenizerModel: spm }).vocabSize).toBe(800);
  });

  it('reports missing inputs and bad config', () => {
    expect(() => loadTokenizerFromFiles({})).toThrow(/need tokenizerJson or tokenizerModel/);
    expect(() => loadTokenizerFromFiles({ tokenizerModel: spm, tokenizerConfig: '{oops' })).toThrow(/tokenizer_config\.json: not valid JSON/);
    expect(() => loadTokenizerFromFiles({ tokenizerModel: spm, tokenizerConfig: { added_tokens_decoder: { x: { content: 'a' } } } })).toThrow(
      /added_tokens_decoder key "x" is not a token id/,
    );
    expect(() => loadTokenizerFromFiles({ tokenizerModel: spm, tokenizerConfig: { added_tokens_decoder: { '5': { content: '<clash>' } } } })).toThrow(
      /id 5 is already/,
    );
  });

  it('rejects a truncated tokenizer.model', () => {
    expect(() => loadTokenizerFromFiles({ tokenizerModel: spm.subarray(0, spm.length - 10) })).toThrow(/tokenizer\.model: truncated protobuf/);
  });
});

/**
 * tokenizer.model loader against the real sentencepiece library: the fixture
 * (model + expected ids/pieces/decoded text) is produced by scripts/make-spm-fixture.py
 * with python3-sentencepiece.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GemmaTokenizer, loadTokenizerFromFiles, parseSentencePieceModel, PieceType } from '../../src/tokenizer/index.js';

const dir = fileURLToPath(new URL('../fixtures/tokenizer/', import.meta.url));
const modelBytes = new Uint8Array(readFileSync(dir + 'spm-bpe.model'));
interface Case {
  input: string;
  ids: number[];
  pieces: string[];
  decoded: string;
}
const expected = JSON.parse(readFileSync(dir + 'expected.json', 'utf8')) as {
  vocab_size: number;
  bos_id: number;
  eos_id: number;
  pad_id: number;
  unk_id: number;
  piece_types: Record<string, string>;
  cases: Case[];
};

describe('SentencePiece ModelProto reader', () => {
  const model = parseSentencePieceModel(modelBytes);

  it('reads pieces, types and trainer/normalizer specs', () => {
    expect(model.pieces.length).toBe(expected.vocab_size);
    expect(model.trainerSpec.modelType).toBe(2); // BPE
    expect(model.trainerSpec.byteFallback).toBe(true);
    expect([model.trainerSpec.padId, model.trainerSpec.eosId, model.trainerSpec.bosId, model.trainerSpec.unkId]).toEqual([
      expected.pad_id,
      expected.eos_id,
      expected.bos_id,
      expected.unk_id,
    ]);
    expect(model.normalizerSpec.name).toBe('identity');
    expect(model.normalizerSpec.addDummyPrefix).toBe(false);
    expect(model.normalizerSpec.removeExtraWhitespaces).toBe(false);
    const typeName: Record<number, string> = {
      [PieceType.Normal]: 'normal',
      [PieceType.UserDefined]: 'normal',
      [PieceType.Control]: 'control',
      [PieceType.Unknown]: 'unknown',
      [PieceType.Byte]: 'byte',
      [PieceType.Unused]: 'unused',
    };
    model.pieces.forEach((p, i) => expect(typeName[p.type], `piece ${i} ${p.piece}`).toBe(expected.piece_types[String(i)]));
    expect(model.pieces[4]!.piece).toBe('<start_of_turn>');
  });

  it('rejects truncated files with a clear error', () => {
    for (const cut of [1, 7, 100, Math.floor(modelBytes.length / 2), modelBytes.length - 3]) {
      expect(() => parseSentencePieceModel(modelBytes.subarray(0, cut)), `cut at ${cut}`).toThrow(/tokenizer\.model: (truncated|malformed|no pieces)/);
    }
    expect(() => parseSentencePieceModel(new Uint8Array(0))).toThrow(/empty/);
    expect(() => GemmaTokenizer.fromSentencePieceModel(modelBytes.subarray(0, 5000))).toThrow(/truncated/);
  });

  it('rejects non-BPE models', () => {
    // Hand-written ModelProto: pieces { piece: "a" } trainer_spec { model_type: UNIGRAM }.
    const proto = Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0x61, 0x12, 0x02, 0x18, 0x01]);
    expect(parseSentencePieceModel(proto).pieces).toEqual([{ piece: 'a', score: 0, type: PieceType.Normal }]);
    expect(() => GemmaTokenizer.fromSentencePieceModel(proto)).toThrow(/UNIGRAM is not supported/);
  });
});

describe('GemmaTokenizer.fromSentencePieceModel matches sentencepiece', () => {
  const tok = GemmaTokenizer.fromSentencePieceModel(modelBytes);

  it('has the trainer ids', () => {
    expect(tok.vocabSize).toBe(expected.vocab_size);
    expect(tok.bosId).toBe(expected.bos_id);
    expect(tok.eosId).toBe(expected.eos_id);
    expect(tok.padId).toBe(expected.pad_id);
    expect(tok.specialIds.startOfTurn).toBe(4);
  });

  for (const c of expected.cases) {
    it(`encodes ${JSON.stringify(c.input)}`, () => {
      const ids = tok.encode(c.input);
      expect(ids).toEqual(c.ids);
      expect(ids.map((id) => tok.idToPiece(id))).toEqual(c.pieces);
      expect(tok.decode(ids)).toBe(c.decoded);
    });
  }

  it('parses control symbols only when asked', () => {
    const ids = tok.encode('<start_of_turn>user', { parseSpecial: true });
    expect(ids[0]).toBe(4);
    const plain = expected.cases.find((c) => c.input.startsWith('<start_of_turn>'))!;
    expect(tok.encode(plain.input)).toEqual(plain.ids);
    expect(tok.decode(ids, { skipSpecial: true })).toBe('user');
  });

  it('loadTokenizerFromFiles uses tokenizer.model and adds tokenizer_config tokens beyond the vocabulary', () => {
    const cfg = { added_tokens_decoder: { '800': { content: '<audio_soft_token>', special: true }, '801': { content: '<image_soft_token>', special: true } } };
    const t = loadTokenizerFromFiles({ tokenizerModel: modelBytes, tokenizerConfig: JSON.stringify(cfg) });
    expect(t.vocabSize).toBe(802);
    expect(t.specialIds.audioSoftToken).toBe(800);
    expect(t.specialIds.imageSoftToken).toBe(801);
    expect(t.encode('hello world<image_soft_token>', { parseSpecial: true })).toEqual([...expected.cases[0]!.ids, 801]);
    expect(t.encode('<image_soft_token>')).not.toContain(801);
    expect(t.decode([801, 800], { skipSpecial: true })).toBe('');
  });
});

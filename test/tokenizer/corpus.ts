/**
 * Deterministic multilingual test corpus for the tokenizer (seeded PRNG, no files).
 * Shared by the compatibility test and bench/tokenizer.bench.ts.
 */
import { mulberry32 } from '../numeric.js';

export const FIXED_LINES: readonly string[] = [
  '',
  ' ',
  '  ',
  'Hello, world!',
  ' Hello world',
  '   leading spaces and trailing   ',
  'The quick brown fox jumps over the lazy dog.',
  "I can't believe it's not butter; they'll see.",
  '안녕하세요, 세계! 오늘 날씨가 정말 좋네요.',
  '日本語のテキストを正しく分割できますか？カタカナとひらがな。',
  '我们今天去公园散步，天气很好。',
  'مرحبا بالعالم، كيف حالك اليوم؟',
  'Привет, мир! Как дела?',
  'नमस्ते दुनिया',
  'สวัสดีชาวโลก',
  'Ελληνικά γράμματα αβγ',
  'function add(a, b) {\n  return a + b;\n}\n',
  'def f(x):\n\tif x > 0:\n\t\treturn x * 2\n\treturn -x\n',
  '    indented four\n        indented eight',
  'tabs\t\tand\t\t\tmore tabs',
  'a  b and    c',
  '\n\n\nthree newlines then text\n',
  '\r\n windows line endings \r\n',
  ' '.repeat(100) + 'after a hundred spaces',
  '\n'.repeat(40),
  '\t'.repeat(35),
  'emoji 😀😃😄 and ZWJ 👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇰🇷🇯🇵',
  '€100 and ₩5000 and ¥300 — “quotes” ‘single’ …',
  'control \u0000\u0001\u0007\u001b[31m red \u007f\u0085 end',
  'zero width\u200bspace\u200cjoiner\u200dthing\ufeffbom',
  'combining e\u0301 vs é and ﬁ ligature and ｆｕｌｌｗｉｄｔｈ',
  'Supercalifragilisticexpialidocious' + 'x'.repeat(300),
  '<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n',
  '<bos><eos><pad><unk><mask>[multimodal]',
  '<start_of_image><image_soft_token><end_of_image>',
  '<h1>Title</h1><table><tr><td>cell</td></tr></table>',
  '<unused0><unused99> <not_a_token> <start_of_turn',
  '▁literal▁marks▁ ▁',
  '<0xE2><0x82> literal byte-token text',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕏 astral 𠀀𠀁 CJK ext B',
  'x86_64-linux-gnu /usr/lib/x86_64 https://example.com/a?b=c&d=e#frag',
  '3.14159265358979 1,000,000 0xDEADBEEF 1e-10',
];

const EN_WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out ' +
  'many then them these so some her would make like him into time has look two more write go see number no way ' +
  'could people my than first water been call who oil its now find long down day did get come made may part ' +
  'tokenizer inference transformer attention embedding gradient Gemma model weights throughput latency'
).split(' ');

const CODE_TEMPLATES = [
  'const {a} = {b}.map(({c}) => {c} * {n});',
  'if ({a} !== null && {b}.length > {n}) {\n    return {c};\n}',
  'for (let i = 0; i < {n}; i++) {\n\t{a}[i] += {b}[i];\n}',
  'import {{ {a} }} from "./{b}.js";',
  'def {a}({b}, {c}={n}):\n    """Docstring."""\n    return {b} ** {c}',
  'SELECT {a}, COUNT(*) FROM {b} WHERE {c} > {n} GROUP BY {a};',
  '#include <stdio.h>\nint main() {{ printf("%d\\n", {n}); }}',
  '<div class="{a}"><span id="{b}">{c}</span></div>',
  '{{"{a}": [{n}, "{b}"], "{c}": null}}',
];

function pick<T>(r: () => number, arr: readonly T[]): T {
  return arr[Math.floor(r() * arr.length)]!;
}

function range(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

function fromRange(r: () => number, lo: number, hi: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCodePoint(range(r, lo, hi));
  return s;
}

function english(r: () => number): string {
  const n = range(r, 3, 25);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = pick(r, EN_WORDS);
    if (r() < 0.1) w = w[0]!.toUpperCase() + w.slice(1);
    if (r() < 0.08) w += pick(r, [',', '.', '!', '?', ';', ':', "'s", '"']);
    words.push(w);
  }
  return words.join(r() < 0.1 ? '  ' : ' ');
}

function cjkLike(r: () => number): string {
  const kind = range(r, 0, 6);
  const n = range(r, 2, 40);
  switch (kind) {
    case 0:
      return fromRange(r, 0xac00, 0xd7a3, n); // Hangul syllables
    case 1:
      return fromRange(r, 0x3041, 0x3096, n) + fromRange(r, 0x30a1, 0x30fa, range(r, 0, 10)); // kana
    case 2:
      return fromRange(r, 0x4e00, 0x9fff, n); // CJK unified
    case 3:
      return fromRange(r, 0x0621, 0x064a, n) + ' ' + fromRange(r, 0x0621, 0x064a, range(r, 1, 8)); // Arabic
    case 4:
      return fromRange(r, 0x0410, 0x044f, n); // Cyrillic
    case 5:
      return fromRange(r, 0x0905, 0x0939, n); // Devanagari
    default:
      return fromRange(r, 0x0e01, 0x0e30, n); // Thai
  }
}

function code(r: () => number): string {
  const ident = (): string => pick(r, EN_WORDS).replace(/[^a-z]/gi, '') + (r() < 0.3 ? String(range(r, 0, 99)) : '');
  let s = pick(r, CODE_TEMPLATES).replace(/\{([abcn])\}/g, (_, k: string) => (k === 'n' ? String(range(r, 0, 10000)) : ident()));
  s = s.replace(/\{\{/g, '{').replace(/\}\}/g, '}');
  const indent = r() < 0.5 ? ' '.repeat(range(r, 0, 12)) : '\t'.repeat(range(r, 0, 4));
  return s
    .split('\n')
    .map((l) => indent + l)
    .join('\n');
}

function whitespace(r: () => number): string {
  let s = '';
  const n = range(r, 1, 12);
  for (let i = 0; i < n; i++) {
    const ws = pick(r, [' ', '\t', '\n', '\r\n', '\u3000', '\u00a0']);
    s += ws.repeat(range(r, 1, r() < 0.2 ? 80 : 6));
    if (r() < 0.6) s += pick(r, EN_WORDS);
  }
  return s;
}

const EMOJI = ['😀', '😂', '🥲', '👍', '👍🏻', '👍🏿', '❤️', '🔥', '🎉', '🇰🇷', '🇺🇸', '👨‍👩‍👧', '👩‍🚀', '🧑🏽‍🍳', '🏳️‍⚧️', '🐈‍⬛', '✨', '🫠', '🪿'];

function emoji(r: () => number): string {
  let s = '';
  const n = range(r, 1, 15);
  for (let i = 0; i < n; i++) s += (r() < 0.3 ? pick(r, EN_WORDS) + ' ' : '') + pick(r, EMOJI);
  return s;
}

function controlChars(r: () => number): string {
  let s = '';
  const n = range(r, 1, 20);
  for (let i = 0; i < n; i++) {
    s += r() < 0.5 ? String.fromCharCode(range(r, 0, 31)) : String.fromCharCode(pick(r, [0x7f, 0x85, 0x9f, 0x200b, 0x200e, 0x2028, 0xfeff]));
    if (r() < 0.4) s += pick(r, EN_WORDS);
  }
  return s;
}

function longWord(r: () => number): string {
  const n = range(r, 60, 1500);
  const alphabet = r() < 0.5 ? 'abcdefghijklmnopqrstuvwxyz' : 'aaaaaaab';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

/** Random code points anywhere in Unicode, including unassigned ones and (with `lone`) lone surrogates. */
function randomCodePoints(r: () => number, lone: boolean): string {
  let s = '';
  const n = range(r, 1, 30);
  for (let i = 0; i < n; i++) {
    const bucket = r();
    let cp: number;
    if (bucket < 0.4) cp = range(r, 0x20, 0x7ff);
    else if (bucket < 0.8) cp = range(r, 0x800, 0xffff);
    else cp = range(r, 0x10000, 0x10ffff);
    if (cp >= 0xd800 && cp <= 0xdfff) {
      if (!lone) cp = 0xe000 + (cp & 0xff);
      s += String.fromCharCode(cp);
    } else s += String.fromCodePoint(cp);
  }
  return s;
}

const latin1 = new TextDecoder('utf-8');

function randomBytes(r: () => number): string {
  const n = range(r, 1, 40);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return latin1.decode(b); // invalid sequences become U+FFFD
}

const SPECIAL_TEXT = [
  '<start_of_turn>',
  '<end_of_turn>',
  '<bos>',
  '<eos>',
  '<start_of_image>',
  '<h2>',
  '</code>',
  '<unused7>',
  '[multimodal]',
  '<mask>',
  '<image_soft_token>',
];

function mixed(r: () => number): string {
  const parts: string[] = [];
  const n = range(r, 2, 8);
  for (let i = 0; i < n; i++) {
    const k = range(r, 0, 5);
    parts.push(k === 0 ? english(r) : k === 1 ? cjkLike(r) : k === 2 ? emoji(r) : k === 3 ? pick(r, SPECIAL_TEXT) : k === 4 ? whitespace(r) : code(r));
  }
  return parts.join(r() < 0.5 ? ' ' : '');
}

export interface CorpusLine {
  text: string;
  /** true when the line may contain lone surrogates. */
  lone: boolean;
}

/** `count` generated lines (deterministic for a given seed) plus FIXED_LINES. */
export function makeCorpus(count = 10000, seed = 20250626): CorpusLine[] {
  const r = mulberry32(seed);
  const out: CorpusLine[] = FIXED_LINES.map((text) => ({ text, lone: false }));
  const gens: Array<(r: () => number) => string> = [
    english,
    english,
    english,
    cjkLike,
    cjkLike,
    code,
    code,
    whitespace,
    emoji,
    controlChars,
    mixed,
    mixed,
    randomBytes,
  ];
  for (let i = 0; i < count; i++) {
    const u = r();
    let text: string;
    let lone = false;
    if (u < 0.02) text = longWord(r);
    else if (u < 0.07) {
      lone = r() < 0.5;
      text = randomCodePoints(r, lone);
    } else text = pick(r, gens)(r);
    if (r() < 0.05) text = ' '.repeat(range(r, 1, 4)) + text;
    out.push({ text, lone });
  }
  return out;
}

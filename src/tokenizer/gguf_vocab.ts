/**
 * The tokenizer as GGUF carries it [llama.cpp convert_hf_to_gguf.py _set_vocab_sentencepiece]:
 * `tokenizer.ggml.model` "llama" (SentencePiece), `tokens`, `scores`, `token_type` (the
 * SentencePiece piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte)
 * and the special ids. That is a SentencePiece model without its protobuf wrapping, so
 * `sentencePieceProto` re-wraps it and the tokenizer.model loader builds the tokenizer; and
 * `vocabFromTokenizerJson` goes the other way for the GGUF writer, from a Hugging Face
 * tokenizer.json (piece scores from the merge ranks, which is how SentencePiece BPE orders merges).
 */

export interface GgufVocab {
  tokens: string[];
  scores: ArrayLike<number>;
  types: ArrayLike<number>;
  bosId: number;
  eosId: number;
  unkId: number;
  padId: number;
  /** SentencePiece add_dummy_prefix (GGUF tokenizer.ggml.add_space_prefix; false for Gemma). */
  addSpacePrefix: boolean;
}

export const TokenType = { Normal: 1, Unknown: 2, Control: 3, UserDefined: 4, Unused: 5, Byte: 6 } as const;

class ProtoWriter {
  private parts: number[] = [];
  private chunks: Uint8Array[] = [];
  private flush(): void {
    if (this.parts.length) {
      this.chunks.push(Uint8Array.from(this.parts));
      this.parts = [];
    }
  }
  varint(v: number): void {
    if (v < 0) {
      // int32 negatives: 10-byte two's complement
      let lo = v >>> 0;
      for (let i = 0; i < 4; i++) {
        this.parts.push((lo & 0x7f) | 0x80);
        lo >>>= 7;
      }
      this.parts.push((lo & 0x0f) | 0x70 | 0x80);
      for (let i = 0; i < 4; i++) this.parts.push(0xff);
      this.parts.push(0x01);
      return;
    }
    while (v >= 0x80) {
      this.parts.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.parts.push(v);
  }
  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.flush();
    this.chunks.push(b);
  }
  float(field: number, x: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.parts.push(...b);
  }
  finish(): Uint8Array {
    this.flush();
    const n = this.chunks.reduce((a, c) => a + c.length, 0),
      out = new Uint8Array(n);
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

/** A SentencePiece ModelProto (BPE) holding the GGUF vocabulary, for specFromSentencePiece. */
export function sentencePieceProto(v: GgufVocab): Uint8Array {
  const enc = new TextEncoder();
  const w = new ProtoWriter();
  for (let i = 0; i < v.tokens.length; i++) {
    const p = new ProtoWriter();
    p.bytes(1, enc.encode(v.tokens[i]));
    p.float(2, v.scores[i] ?? 0);
    const t = v.types[i] ?? TokenType.Normal;
    if (t < 1 || t > 6) throw new Error(`tokenizer.ggml.token_type[${i}] is ${t}, not a SentencePiece piece type (1-6)`);
    p.tag(3, 0);
    p.varint(t);
    w.bytes(1, p.finish());
  }
  const hasBytes = Array.from(v.types).some((t) => t === TokenType.Byte);
  const ts = new ProtoWriter();
  ts.tag(3, 0);
  ts.varint(2); // model_type BPE
  ts.tag(35, 0);
  ts.varint(hasBytes ? 1 : 0); // byte_fallback
  for (const [field, id] of [
    [40, v.unkId],
    [41, v.bosId],
    [42, v.eosId],
    [43, v.padId],
  ] as const) {
    ts.tag(field, 0);
    ts.varint(id);
  }
  w.bytes(2, ts.finish());
  const ns = new ProtoWriter();
  ns.bytes(1, enc.encode('identity'));
  ns.tag(3, 0);
  ns.varint(v.addSpacePrefix ? 1 : 0);
  ns.tag(4, 0);
  ns.varint(0); // remove_extra_whitespaces
  ns.tag(5, 0);
  ns.varint(1); // escape_whitespaces
  w.bytes(3, ns.finish());
  return w.finish();
}

/**
 * A GGUF vocabulary from a Hugging Face tokenizer.json of a SentencePiece-BPE model (Gemma):
 * pieces by id, added tokens (special → control, else user-defined), `<0xNN>` byte pieces,
 * and scores −(rank of the first merge that makes the piece), so merges keep their order.
 * `size` pads with unused `[PADn]` pieces, as the converter does up to the embedding's rows.
 */
export function vocabFromTokenizerJson(text: string | object, size?: number): GgufVocab {
  const j = (typeof text === 'string' ? JSON.parse(text) : text) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; unk_token?: string };
    added_tokens?: { id: number; content: string; special: boolean }[];
  };
  const m = j.model;
  if (m?.type !== 'BPE' || typeof m.vocab !== 'object') throw new Error('tokenizer.json: expected a BPE model with a vocab');
  let n = size ?? 0;
  for (const id of Object.values(m.vocab)) n = Math.max(n, id + 1);
  for (const t of j.added_tokens ?? []) n = Math.max(n, t.id + 1);
  const tokens: string[] = new Array(n).fill('');
  const types = new Int32Array(n).fill(TokenType.Normal);
  const scores = new Float32Array(n);
  for (const [piece, id] of Object.entries(m.vocab)) tokens[id] = piece;
  const rank = new Map<string, number>();
  (m.merges ?? []).forEach((mg, r) => {
    const [a, b] = typeof mg === 'string' ? (mg.split(' ') as [string, string]) : mg;
    const piece = a + b;
    if (!rank.has(piece)) rank.set(piece, r);
  });
  for (let id = 0; id < n; id++) {
    const r = rank.get(tokens[id]);
    if (r !== undefined) scores[id] = -r;
    if (/^<0x[0-9A-F]{2}>$/.test(tokens[id])) types[id] = TokenType.Byte;
  }
  for (const t of j.added_tokens ?? []) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TokenType.Control : TokenType.UserDefined;
  }
  const find = (s: string, def: number) => {
    const i = tokens.indexOf(s);
    return i >= 0 ? i : def;
  };
  const unkId = find(m.unk_token ?? '<unk>', 3);
  if (unkId < n) types[unkId] = TokenType.Unknown;
  for (let id = 0; id < n; id++)
    if (tokens[id] === '') {
      tokens[id] = `[PAD${id}]`;
      types[id] = TokenType.Unused;
    }
  return { tokens, scores, types, bosId: find('<bos>', 2), eosId: find('<eos>', 1), unkId, padId: find('<pad>', 0), addSpacePrefix: false };
}

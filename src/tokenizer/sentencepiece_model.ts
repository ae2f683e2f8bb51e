/**
 * Minimal reader for SentencePiece `tokenizer.model` files (a serialized
 * `sentencepiece.ModelProto`, see sentencepiece/src/sentencepiece_model.proto).
 *
 * Only the fields the encoder needs are decoded; everything else is skipped by
 * wire type, so newer model files with extra fields still load.
 */

/** SentencePiece piece types (ModelProto.SentencePiece.Type). */
export const PieceType = {
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface TrainerSpec {
  /** 1 = UNIGRAM, 2 = BPE, 3 = WORD, 4 = CHAR (proto default is UNIGRAM). */
  modelType: number;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
}

export interface NormalizerSpec {
  name: string;
  hasPrecompiledCharsmap: boolean;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

/** Protobuf wire-format cursor over a byte array; every read is bounds-checked. */
class ProtoReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  private truncated(): never {
    throw new Error(`tokenizer.model: truncated protobuf in ${this.what} at byte ${this.pos} (message ends at ${this.end})`);
  }

  /** Varint as a JS number (exact up to 2^53; larger values only matter for skipped fields). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.truncated();
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error(`tokenizer.model: malformed varint in ${this.what} at byte ${this.pos}`);
  }

  /** int32 fields are encoded as 64-bit two's complement varints when negative. */
  int32(): number {
    const v = this.varint();
    return v >= 2 ** 63 ? v - 2 ** 64 : v > 0x7fffffff ? v - 2 ** 32 : v;
  }

  float32(): number {
    if (this.pos + 4 > this.end) this.truncated();
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** Returns [start, end) of a length-delimited field. */
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) this.truncated();
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        if (this.pos + 8 > this.end) this.truncated();
        this.pos += 8;
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        if (this.pos + 4 > this.end) this.truncated();
        this.pos += 4;
        return;
      default:
        throw new Error(`tokenizer.model: unsupported protobuf wire type ${wireType} in ${this.what} at byte ${this.pos}`);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function parsePiece(buf: Uint8Array, start: number, end: number, index: number): SentencePiece {
  const r = new ProtoReader(buf, start, end, `pieces[${index}]`);
  let piece = '';
  let score = 0;
  let type: PieceType = PieceType.Normal;
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag & 7;
    if (field === 1 && wire === 2) {
      const [s, e] = r.bytes();
      piece = utf8.decode(buf.subarray(s, e));
    } else if (field === 2 && wire === 5) score = r.float32();
    else if (field === 3 && wire === 0) type = r.varint() as PieceType;
    else r.skip(wire);
  }
  return { piece, score, type };
}

function parseTrainerSpec(buf: Uint8Array, start: number, end: number): TrainerSpec {
  // Proto defaults (sentencepiece_model.proto): UNIGRAM, unk 0, bos 1, eos 2, pad -1.
  const spec: TrainerSpec = { modelType: 1, byteFallback: false, unkId: 0, bosId: 1, eosId: 2, padId: -1 };
  const r = new ProtoReader(buf, start, end, 'trainer_spec');
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag & 7;
    if (wire !== 0) {
      r.skip(wire);
      continue;
    }
    switch (field) {
      case 3:
        spec.modelType = r.varint();
        break;
      case 35:
        spec.byteFallback = r.varint() !== 0;
        break;
      case 40:
        spec.unkId = r.int32();
        break;
      case 41:
        spec.bosId = r.int32();
        break;
      case 42:
        spec.eosId = r.int32();
        break;
      case 43:
        spec.padId = r.int32();
        break;
      default:
        r.varint();
    }
  }
  return spec;
}

function parseNormalizerSpec(buf: Uint8Array, start: number, end: number): NormalizerSpec {
  // Proto defaults: add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces all true.
  const spec: NormalizerSpec = {
    name: '',
    hasPrecompiledCharsmap: false,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  const r = new ProtoReader(buf, start, end, 'normalizer_spec');
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag & 7;
    if (field === 1 && wire === 2) {
      const [s, e] = r.bytes();
      spec.name = utf8.decode(buf.subarray(s, e));
    } else if (field === 2 && wire === 2) {
      const [s, e] = r.bytes();
      spec.hasPrecompiledCharsmap = e > s;
    } else if (field === 3 && wire === 0) spec.addDummyPrefix = r.varint() !== 0;
    else if (field === 4 && wire === 0) spec.removeExtraWhitespaces = r.varint() !== 0;
    else if (field === 5 && wire === 0) spec.escapeWhitespaces = r.varint() !== 0;
    else r.skip(wire);
  }
  return spec;
}

/** Parse a serialized ModelProto. Throws a descriptive Error on truncated or malformed input. */
export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('tokenizer.model: expected a Uint8Array');
  if (bytes.length === 0) throw new Error('tokenizer.model: file is empty');
  const r = new ProtoReader(bytes, 0, bytes.length, 'ModelProto');
  const pieces: SentencePiece[] = [];
  let trainerSpec: TrainerSpec | undefined;
  let normalizerSpec: NormalizerSpec | undefined;
  while (r.pos < bytes.length) {
    const tag = r.varint();
    const field = Math.floor(tag / 8),
      wire = tag & 7;
    if (field === 1 && wire === 2) {
      const [s, e] = r.bytes();
      pieces.push(parsePiece(bytes, s, e, pieces.length));
    } else if (field === 2 && wire === 2) {
      const [s, e] = r.bytes();
      trainerSpec = parseTrainerSpec(bytes, s, e);
    } else if (field === 3 && wire === 2) {
      const [s, e] = r.bytes();
      normalizerSpec = parseNormalizerSpec(bytes, s, e);
    } else r.skip(wire);
  }
  if (pieces.length === 0) throw new Error('tokenizer.model: no pieces found (not a SentencePiece ModelProto?)');
  return {
    pieces,
    trainerSpec: trainerSpec ?? parseTrainerSpec(bytes, 0, 0),
    normalizerSpec: normalizerSpec ?? parseNormalizerSpec(bytes, 0, 0),
  };
}

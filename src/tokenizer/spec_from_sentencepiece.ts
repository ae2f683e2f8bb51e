/**
 * Builder of a TokenizerSpec from a SentencePiece tokenizer.model (BPE models only): merges by
 * piece score, USER_DEFINED pieces matched in the normalized text, CONTROL pieces only with
 * parseSpecial, UNUSED pieces re-split, byte fallback.
 */
import { parseSentencePieceModel, PieceType } from './sentencepiece_model.js';
import { BYTE_PIECE, type AddedTokenSpec, type NormalizeStep, type TokenizerSpec } from './spec.js';

export function specFromSentencePiece(bytes: Uint8Array): TokenizerSpec {
  const model = parseSentencePieceModel(bytes);
  const { trainerSpec: ts, normalizerSpec: ns } = model;
  if (ts.modelType !== 2) {
    const names: Record<number, string> = { 1: 'UNIGRAM', 2: 'BPE', 3: 'WORD', 4: 'CHAR' };
    throw new Error(`tokenizer.model: model_type ${names[ts.modelType] ?? ts.modelType} is not supported (only BPE)`);
  }
  const n = model.pieces.length;
  const pieces = model.pieces.map((p) => p.piece);
  const special = new Uint8Array(n);
  const unused = new Uint8Array(n);
  // pieces_ in sentencepiece/src/model_interface.cc: NORMAL, USER_DEFINED and UNUSED take part in BPE.
  const mergeable = new Map<string, number>();
  const rawTokens: AddedTokenSpec[] = [];
  const normTokens: AddedTokenSpec[] = [];
  let byteIds: Int32Array | null = ts.byteFallback ? new Int32Array(256).fill(-1) : null;
  model.pieces.forEach((p, id) => {
    switch (p.type) {
      case PieceType.Normal:
      case PieceType.UserDefined:
      case PieceType.Unused:
        if (mergeable.has(p.piece)) throw new Error(`tokenizer.model: duplicate piece ${JSON.stringify(p.piece)} (ids ${mergeable.get(p.piece)} and ${id})`);
        mergeable.set(p.piece, id);
        if (p.type === PieceType.UserDefined) normTokens.push({ id, content: p.piece, special: false });
        if (p.type === PieceType.Unused) unused[id] = 1;
        break;
      case PieceType.Control:
      case PieceType.Unknown:
        special[id] = 1;
        rawTokens.push({ id, content: p.piece, special: true });
        break;
      case PieceType.Byte: {
        const m = BYTE_PIECE.exec(p.piece);
        if (byteIds && m) byteIds[parseInt(m[1]!, 16)] = id;
        break;
      }
    }
  });
  if (byteIds && byteIds.indexOf(-1) >= 0) byteIds = null;

  // SentencePiece BPE merges any adjacent pair whose concatenation is a piece,
  // best score first; precompute those pairs from the vocabulary.
  const ml: number[] = [],
    mr: number[] = [],
    mres: number[] = [],
    mpri: number[] = [];
  const charIds = new Map<number, number>();
  for (const [piece, id] of mergeable) {
    const cps = Array.from(piece);
    if (cps.length === 1) {
      charIds.set(piece.codePointAt(0)!, id);
      continue;
    }
    let off = 0;
    for (let k = 0; k < cps.length - 1; k++) {
      off += cps[k]!.length;
      const l = mergeable.get(piece.slice(0, off));
      const r = mergeable.get(piece.slice(off));
      if (l !== undefined && r !== undefined) {
        ml.push(l);
        mr.push(r);
        mres.push(id);
        mpri.push(-model.pieces[id]!.score);
      }
    }
  }

  const normalize: NormalizeStep[] = [];
  if (ns.name !== '' && ns.name !== 'identity' && ns.hasPrecompiledCharsmap) {
    // Approximation: SentencePiece's nmt_nfkc charsmap is NFKC plus a few control-character rules.
    normalize.push({ kind: 'unicode', form: 'NFKC' });
  }
  normalize.push({ kind: 'spm-whitespace', addDummyPrefix: ns.addDummyPrefix, removeExtra: ns.removeExtraWhitespaces, escape: ns.escapeWhitespaces });

  const idOr = (id: number): number => (id >= 0 && id < n ? id : -1);
  return {
    pieces,
    special,
    rawTokens,
    normTokens,
    normalize,
    split: null,
    bpe: {
      vocabSize: n,
      charIds,
      mergeLeft: Int32Array.from(ml),
      mergeRight: Int32Array.from(mr),
      mergeResult: Int32Array.from(mres),
      mergePriority: Float64Array.from(mpri),
      byteIds,
      unkId: idOr(ts.unkId),
      fuseUnk: true,
      unusedIds: unused,
    },
    bosId: idOr(ts.bosId),
    eosId: idOr(ts.eosId),
    padId: idOr(ts.padId),
    unkId: idOr(ts.unkId),
    decodeStripLeadingSpace: ns.addDummyPrefix,
  };
}

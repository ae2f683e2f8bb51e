/**
 * Leftmost-longest literal matching over a set of strings (UTF-16 code units): how added tokens
 * ("<start_of_turn>", "\n\n", ...) are split out of text before BPE, as HF tokenizers'
 * AddedVocabulary and SentencePiece's user-defined symbols do.
 */
import type { AddedTokenSpec } from './spec.js';

interface TrieNode {
  children: Map<number, TrieNode>;
  id: number;
  len: number;
}

/** Leftmost-longest literal matcher over a set of strings (UTF-16 code units). */
export class LiteralMatcher {
  private readonly root: TrieNode = { children: new Map(), id: -1, len: 0 };
  private readonly first = new Uint8Array(0x10000);
  readonly empty: boolean;
  matchLen = 0;
  matchId = -1;

  constructor(tokens: readonly AddedTokenSpec[]) {
    let count = 0;
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < t.content.length; i++) {
        const c = t.content.charCodeAt(i);
        let child = node.children.get(c);
        if (!child) {
          child = { children: new Map(), id: -1, len: i + 1 };
          node.children.set(c, child);
        }
        node = child;
      }
      if (node.id === -1) {
        node.id = t.id;
        count++;
      }
      this.first[t.content.charCodeAt(0)] = 1;
    }
    this.empty = count === 0;
  }

  /** Start of the next match at or after `from`, or -1. Sets matchLen / matchId. */
  next(text: string, from: number): number {
    if (this.empty) return -1;
    const first = this.first;
    for (let i = from; i < text.length; i++) {
      if (first[text.charCodeAt(i)] === 0) continue;
      let node: TrieNode | undefined = this.root;
      let bestLen = 0,
        bestId = -1;
      for (let j = i; j < text.length; j++) {
        node = node.children.get(text.charCodeAt(j));
        if (node === undefined) break;
        if (node.id !== -1) {
          bestLen = node.len;
          bestId = node.id;
        }
      }
      if (bestId !== -1) {
        this.matchLen = bestLen;
        this.matchId = bestId;
        return i;
      }
    }
    return -1;
  }
}

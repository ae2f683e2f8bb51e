/**
 * UTF-8 helpers shared by decode() and the streaming decoder.
 *
 * Invalid bytes become one U+FFFD each (what SentencePiece's decoder does for
 * stray byte pieces), and a sequence that is merely incomplete is held back by
 * the streaming decoder until its remaining bytes arrive.
 */

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Expected length of a sequence starting with `lead`, or 0 if `lead` cannot start one. */
function seqLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** Valid range for the second byte given the lead (Unicode Table 3-7), as [lo, hi]. */
function secondByteOk(lead: number, b: number): boolean {
  switch (lead) {
    case 0xe0:
      return b >= 0xa0 && b <= 0xbf;
    case 0xed:
      return b >= 0x80 && b <= 0x9f;
    case 0xf0:
      return b >= 0x90 && b <= 0xbf;
    case 0xf4:
      return b >= 0x80 && b <= 0x8f;
    default:
      return b >= 0x80 && b <= 0xbf;
  }
}

/**
 * Decode bytes[start, end). If `final` is false, a trailing sequence that is a
 * valid but incomplete prefix is not decoded; `consumed` tells where decoding stopped.
 */
export function decodeUtf8Prefix(bytes: Uint8Array, start: number, end: number, final: boolean): { text: string; consumed: number } {
  let text = '';
  let i = start;
  let runStart = start; // start of a run of valid bytes not yet turned into text
  const flushRun = (upTo: number): void => {
    if (upTo > runStart) text += fatalDecoder.decode(bytes.subarray(runStart, upTo));
  };
  while (i < end) {
    const lead = bytes[i]!;
    const len = seqLength(lead);
    if (len === 1) {
      i++;
      continue;
    }
    let ok = len > 0;
    let k = 1;
    for (; ok && k < len && i + k < end; k++) {
      const b = bytes[i + k]!;
      ok = k === 1 ? secondByteOk(lead, b) : b >= 0x80 && b <= 0xbf;
    }
    if (ok && k === len) {
      i += len;
      continue;
    }
    if (ok && i + k >= end && !final) {
      // Valid so far but cut off: keep it for later.
      flushRun(i);
      return { text, consumed: i - start };
    }
    flushRun(i);
    text += '\uFFFD';
    i++;
    runStart = i;
  }
  flushRun(end);
  return { text, consumed: end - start };
}

/** Decode a complete byte string; invalid bytes become U+FFFD one for one. */
export function decodeUtf8Lenient(bytes: Uint8Array): string {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return decodeUtf8Prefix(bytes, 0, bytes.length, true).text;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replace lone UTF-16 surrogates by U+FFFD, as any UTF-8 conversion (TextEncoder) would. */
export function toWellFormed(s: string): string {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
}

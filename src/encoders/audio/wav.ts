/**
 * A careful WAV (RIFF/WAVE) reader: PCM 8/16/24/32-bit integer, 32/64-bit IEEE float, and the same
 * inside WAVE_FORMAT_EXTENSIBLE, any channel count, any sample rate.
 *
 * It trusts nothing in the file: every chunk size is checked against the bytes actually present,
 * so a forged size can neither read out of bounds nor make it allocate more than the file holds.
 * A data chunk that claims more bytes than remain (streamed or truncated files) is read up to the
 * last whole frame. Anything else wrong is a `WavError` that says what and where.
 *
 * Integer PCM is scaled to [-1, 1) by 2^(bits-1) (8-bit is unsigned, centred on 128). 32-bit float
 * samples are passed through bit for bit.
 */

export class WavError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WavError';
  }
}

export type WavSampleFormat = 'pcm8' | 'pcm16' | 'pcm24' | 'pcm32' | 'float32' | 'float64';

export interface WavAudio {
  sampleRate: number;
  format: WavSampleFormat;
  /** One array per channel, each of `frames` samples. */
  channels: Float32Array[];
  frames: number;
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Sanity bounds: beyond these a header is corrupt rather than exotic. */
const MAX_CHANNELS = 256;
const MAX_SAMPLE_RATE = 1_536_000;

function fourcc(b: Uint8Array, o: number): string {
  return String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]);
}

/** Decodes a whole WAV file held in memory. `name` is used in error messages. */
export function decodeWav(input: Uint8Array | ArrayBuffer, name = '<wav>'): WavAudio {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const fail = (msg: string): never => { throw new WavError(`${name}: ${msg}`); };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12) fail(`not a WAV file: ${bytes.length} bytes is shorter than a RIFF header`);
  const riff = fourcc(bytes, 0);
  if (riff === 'RF64' || riff === 'BW64') fail(`${riff} (64-bit RIFF) WAV files are not supported`);
  if (riff === 'RIFX') fail('big-endian RIFX WAV files are not supported');
  if (riff !== 'RIFF' || fourcc(bytes, 8) !== 'WAVE') fail('not a WAV file (no RIFF/WAVE header)');

  let fmt: { tag: number; channels: number; rate: number; blockAlign: number; bits: number } | null = null;
  let data: { offset: number; size: number } | null = null;
  // Walk the chunks; the RIFF size field is often wrong, so the file length bounds the walk.
  let pos = 12;
  while (pos + 8 <= bytes.length && !data) {
    const id = fourcc(bytes, pos);
    const size = dv.getUint32(pos + 4, true);
    const body = pos + 8;
    const avail = bytes.length - body;
    if (id === 'fmt ') {
      if (size < 16 || size > avail) fail(`'fmt ' chunk at byte ${pos} has size ${size} (needs 16..${avail})`);
      let tag = dv.getUint16(body, true);
      const channels = dv.getUint16(body + 2, true);
      const rate = dv.getUint32(body + 4, true);
      const blockAlign = dv.getUint16(body + 12, true);
      const bits = dv.getUint16(body + 14, true);
      if (tag === WAVE_FORMAT_EXTENSIBLE) {
        if (size < 40) fail(`WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is ${size} bytes, needs 40`);
        tag = dv.getUint16(body + 24, true); // first two bytes of the SubFormat GUID
      }
      fmt = { tag, channels, rate, blockAlign, bits };
    } else if (id === 'data') {
      if (!fmt) fail(`'data' chunk at byte ${pos} comes before any 'fmt ' chunk`);
      data = { offset: body, size: Math.min(size, avail) };
      break;
    }
    // Chunks are padded to an even size.
    const next = body + size + (size & 1);
    if (next <= pos) fail(`chunk '${id}' at byte ${pos} has an invalid size`);
    pos = next;
  }
  if (!fmt) fail("no 'fmt ' chunk");
  if (!data) fail("no 'data' chunk");
  const f = fmt!;
  if (f.channels < 1 || f.channels > MAX_CHANNELS) fail(`unsupported channel count ${f.channels}`);
  if (f.rate < 1 || f.rate > MAX_SAMPLE_RATE) fail(`unsupported sample rate ${f.rate} Hz`);
  let format: WavSampleFormat;
  if (f.tag === WAVE_FORMAT_PCM) {
    const m: Record<number, WavSampleFormat> = { 8: 'pcm8', 16: 'pcm16', 24: 'pcm24', 32: 'pcm32' };
    if (!m[f.bits]) fail(`unsupported PCM bit depth ${f.bits} (8, 16, 24 or 32 are)`);
    format = m[f.bits];
  } else if (f.tag === WAVE_FORMAT_IEEE_FLOAT) {
    if (f.bits !== 32 && f.bits !== 64) fail(`unsupported float bit depth ${f.bits} (32 or 64 are)`);
    format = f.bits === 32 ? 'float32' : 'float64';
  } else {
    fail(`unsupported WAV encoding (format tag 0x${f.tag.toString(16)}; PCM and IEEE float are supported)`);
  }
  const bytesPerSample = f.bits / 8;
  const frameBytes = bytesPerSample * f.channels;
  if (f.blockAlign !== frameBytes) fail(`block align ${f.blockAlign} does not match ${f.channels} channels of ${f.bits} bits`);
  const frames = Math.floor(data!.size / frameBytes);
  const channels = Array.from({ length: f.channels }, () => new Float32Array(frames));
  const base = data!.offset;
  for (let c = 0; c < f.channels; c++) {
    const out = channels[c];
    let o = base + c * bytesPerSample;
    switch (format!) {
      case 'pcm8': for (let i = 0; i < frames; i++, o += frameBytes) out[i] = (bytes[o] - 128) / 128; break;
      case 'pcm16': for (let i = 0; i < frames; i++, o += frameBytes) out[i] = dv.getInt16(o, true) / 32768; break;
      case 'pcm24':
        for (let i = 0; i < frames; i++, o += frameBytes) {
          const v = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16);
          out[i] = ((v << 8) >> 8) / 8388608; // sign-extend 24 → 32 bits
        }
        break;
      case 'pcm32': for (let i = 0; i < frames; i++, o += frameBytes) out[i] = dv.getInt32(o, true) / 2147483648; break;
      case 'float32': for (let i = 0; i < frames; i++, o += frameBytes) out[i] = dv.getFloat32(o, true); break;
      case 'float64': for (let i = 0; i < frames; i++, o += frameBytes) out[i] = dv.getFloat64(o, true); break;
    }
  }
  return { sampleRate: f.rate, format: format!, channels, frames };
}

/** Mixes channels down to mono by averaging; a mono input is returned as is (no copy, bit-exact). */
export function mixdown(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 0) throw new Error('mixdown: no channels');
  if (channels.length === 1) return channels[0];
  const n = channels[0].length, out = new Float32Array(n), k = channels.length;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < k; c++) s += channels[c][i];
    out[i] = s / k;
  }
  return out;
}

/** Encodes a WAV file (tests and tools). `samples` are per channel, equal length. */
export function encodeWav(channels: readonly Float32Array[], sampleRate: number, format: WavSampleFormat): Uint8Array {
  const nc = channels.length, frames = channels[0]?.length ?? 0;
  const bps = { pcm8: 1, pcm16: 2, pcm24: 3, pcm32: 4, float32: 4, float64: 8 }[format];
  const dataBytes = frames * nc * bps;
  const out = new Uint8Array(44 + dataBytes + (dataBytes & 1));
  const dv = new DataView(out.buffer);
  const put = (o: number, s: string) => { for (let i = 0; i < 4; i++) out[o + i] = s.charCodeAt(i); };
  put(0, 'RIFF'); dv.setUint32(4, out.length - 8, true); put(8, 'WAVE');
  put(12, 'fmt '); dv.setUint32(16, 16, true);
  dv.setUint16(20, format.startsWith('float') ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, true);
  dv.setUint16(22, nc, true); dv.setUint32(24, sampleRate, true);
  dv.setUint32(28, sampleRate * nc * bps, true); dv.setUint16(32, nc * bps, true); dv.setUint16(34, bps * 8, true);
  put(36, 'data'); dv.setUint32(40, dataBytes, true);
  const clampInt = (x: number, bits: number) => {
    const m = 2 ** (bits - 1);
    return Math.max(-m, Math.min(m - 1, Math.round(x * m)));
  };
  let o = 44;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < nc; c++, o += bps) {
      const x = channels[c][i];
      switch (format) {
        case 'pcm8': out[o] = clampInt(x, 8) + 128; break;
        case 'pcm16': dv.setInt16(o, clampInt(x, 16), true); break;
        case 'pcm24': { const v = clampInt(x, 24); out[o] = v & 255; out[o + 1] = (v >> 8) & 255; out[o + 2] = (v >> 16) & 255; break; }
        case 'pcm32': dv.setInt32(o, clampInt(x, 32), true); break;
        case 'float32': dv.setFloat32(o, x, true); break;
        case 'float64': dv.setFloat64(o, x, true); break;
      }
    }
  }
  return out;
}

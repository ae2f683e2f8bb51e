/**
 * Image files to 8-bit RGB, without native code: PNG through fast-png, JPEG through jpeg-js.
 *
 * What Gemma 3n's processor sees is an RGB uint8 image: transformers loads images given by
 * path/URL with `image.convert("RGB")` (4.x) or `decode_image(mode=RGB)` (5.x), so
 *   - RGBA / grey+alpha: the alpha channel is dropped (no compositing) [golden vision README],
 *   - grey: R = G = B = L,
 *   - palette: looked up (palette transparency ignored),
 *   - 16-bit samples: the high byte is kept (PIL's "RGB;16B" unpacker and libpng's strip_16),
 *   - 1/2/4-bit grey: scaled to 0..255 (v · 255 / (2^bits − 1)), as PIL's "L;2"/"L;4" unpackers.
 * EXIF orientation is not applied.
 *
 * Every failure is an `ImageDecodeError` naming the problem. Dimensions are checked against
 * `maxPixels` from the header before any pixel buffer is allocated, so a forged 100000×100000
 * header costs nothing.
 */
import { Unzlib } from 'fflate';
import { decode as decodePngLib } from 'fast-png';
import jpeg from 'jpeg-js';

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B (HWC). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** width · height · 3 bytes. */
  readonly data: Uint8Array;
}

export class ImageDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

export interface DecodeOptions {
  /** Largest accepted width · height (default 40 megapixels, ~120 MB of RGB). */
  maxPixels?: number;
  /** Largest accepted width or height (default 32768). */
  maxSide?: number;
}

const DEFAULT_MAX_PIXELS = 40_000_000;
const DEFAULT_MAX_SIDE = 32768;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export type ImageFormat = 'png' | 'jpeg';

/** Sniffs the format from the first bytes; null if neither PNG nor JPEG. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Decodes a PNG or JPEG file to RGB. `name` is used in error messages. */
export function decodeImage(bytes: Uint8Array, opts: DecodeOptions = {}, name = '<image>'): RgbImage {
  const format = sniffImageFormat(bytes);
  if (format === 'png') return decodePng(bytes, opts, name);
  if (format === 'jpeg') return decodeJpeg(bytes, opts, name);
  const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new ImageDecodeError(`${name}: not a PNG or JPEG file (starts with ${head || 'nothing'}); supported formats: PNG, JPEG`);
}

function checkSize(width: number, height: number, opts: DecodeOptions, name: string): void {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS, maxSide = opts.maxSide ?? DEFAULT_MAX_SIDE;
  if (!(width >= 1 && height >= 1)) throw new ImageDecodeError(`${name}: invalid image size ${width}×${height}`);
  if (width > maxSide || height > maxSide || width * height > maxPixels) {
    throw new ImageDecodeError(`${name}: image size ${width}×${height} exceeds the limit (${maxSide} per side, ${maxPixels} pixels)`);
  }
}

// ---------------------------------------------------------------------------------------------
// PNG

/** Valid (colour type -> bit depths) pairs of the PNG spec, and channels per colour type. */
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Reads and validates IHDR before the library allocates anything: signature, IHDR first with
 * length 13, legal colour type / depth, size within limits.
 */
function pngHeader(bytes: Uint8Array, opts: DecodeOptions, name: string): { width: number; height: number; depth: number; colorType: number; interlaced: boolean } {
  if (bytes.length < 8 + 8 + 13 + 4) throw new ImageDecodeError(`${name}: truncated PNG (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = dv.getUint32(8);
  const type = String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]);
  if (type !== 'IHDR' || len !== 13) throw new ImageDecodeError(`${name}: corrupt PNG: first chunk is '${type}' (length ${len}), expected IHDR of length 13`);
  const width = dv.getUint32(16), height = dv.getUint32(20);
  const depth = bytes[24], colorType = bytes[25], interlace = bytes[28];
  if (!(colorType in PNG_DEPTHS)) throw new ImageDecodeError(`${name}: unsupported PNG colour type ${colorType}`);
  if (!PNG_DEPTHS[colorType].includes(depth)) throw new ImageDecodeError(`${name}: invalid PNG bit depth ${depth} for colour type ${colorType}`);
  if (bytes[26] !== 0 || bytes[27] !== 0 || interlace > 1) throw new ImageDecodeError(`${name}: unsupported PNG compression/filter/interlace method (${bytes[26]}, ${bytes[27]}, ${interlace})`);
  // fast-png de-interlaces whole bytes only, so sub-byte Adam7 images would come out scrambled.
  if (interlace === 1 && depth < 8) throw new ImageDecodeError(`${name}: unsupported PNG: interlaced (Adam7) with bit depth ${depth}`);
  checkSize(width, height, opts, name);
  return { width, height, depth, colorType, interlaced: interlace === 1 };
}

/** Filtered-scanline bytes an image of this header needs (the inflated IDAT size). */
function pngRawSize(width: number, height: number, channels: number, depth: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * channels * depth) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  return passes.reduce((sum, [x, y, dx, dy]) => sum + rows(Math.ceil((width - x) / dx), Math.ceil((height - y) / dy)), 0);
}

/**
 * Inflates the IDAT stream once, discarding the output, and stops as soon as it exceeds what the
 * header allows: a deflate "bomb" (up to ~1032× expansion) is refused before fast-png would
 * allocate for it. Input is fed in 16 KB slices so no single step can produce more than ~16 MB.
 */
function checkPngDataSize(bytes: Uint8Array, limit: number, name: string): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let total = 0;
  const z = new Unzlib((chunk) => {
    total += chunk.length;
    if (total > limit) throw new ImageDecodeError(`${name}: corrupt PNG: image data inflates past the ${limit} bytes its header allows`);
  });
  for (let p = 8; p + 8 <= bytes.length;) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    const end = Math.min(bytes.length, p + 8 + len);
    if (type === 'IDAT') {
      for (let q = p + 8; q < end; q += 16384) {
        try {
          z.push(bytes.subarray(q, Math.min(end, q + 16384)));
        } catch (e) {
          if (e instanceof ImageDecodeError) throw e;
          return; // a broken stream: let the decoder report it
        }
      }
    }
    if (type === 'IEND') break;
    p = p + 12 + len;
  }
}

export function decodePng(bytes: Uint8Array, opts: DecodeOptions = {}, name = '<png>'): RgbImage {
  const hdr = pngHeader(bytes, opts, name);
  checkPngDataSize(bytes, pngRawSize(hdr.width, hdr.height, PNG_CHANNELS[hdr.colorType], hdr.depth, hdr.interlaced) + 65536, name);
  let png: ReturnType<typeof decodePngLib>;
  try {
    png = decodePngLib(bytes, { checkCrc: false });
  } catch (e) {
    throw new ImageDecodeError(`${name}: corrupt PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { width, height, channels, depth } = png;
  if (width !== hdr.width || height !== hdr.height) throw new ImageDecodeError(`${name}: corrupt PNG: decoded size ${width}×${height} differs from IHDR`);
  const n = width * height;
  const src = png.data;
  const out = new Uint8Array(n * 3);
  if (png.palette) {
    // Indexed: one palette index per pixel after unpacking (rows are packed below 8 bits).
    const pal = png.palette;
    const idx = unpackSamples(src, n, width, height, depth, 1, name);
    for (let i = 0; i < n; i++) {
      const entry = pal[idx[i]];
      if (entry === undefined) throw new ImageDecodeError(`${name}: corrupt PNG: palette index ${idx[i]} out of range (${pal.length} entries)`);
      out[3 * i] = entry[0]; out[3 * i + 1] = entry[1]; out[3 * i + 2] = entry[2];
    }
    return { width, height, data: out };
  }
  if (channels !== PNG_CHANNELS[hdr.colorType]) throw new ImageDecodeError(`${name}: corrupt PNG: ${channels} channels for colour type ${hdr.colorType}`);
  const s = unpackSamples(src, n, width, height, depth, channels, name);
  if (depth < 8) {
    const k = 255 / ((1 << depth) - 1); // 1-bit 0/255, 2-bit 0/85/170/255, 4-bit ·17
    for (let i = 0; i < n; i++) s[i] *= k;
  }
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) { const g = s[i * channels]; out[3 * i] = g; out[3 * i + 1] = g; out[3 * i + 2] = g; }
  } else {
    for (let i = 0; i < n; i++) { const o = i * channels; out[3 * i] = s[o]; out[3 * i + 1] = s[o + 1]; out[3 * i + 2] = s[o + 2]; }
  }
  return { width, height, data: out };
}

/**
 * fast-png returns 8-bit samples as Uint8Array, 16-bit as Uint16Array, and packed rows for
 * depths below 8 (each row starts on a byte boundary). Returns one 8-bit value per sample
 * (16-bit: high byte; below 8 bits: the raw value, which the caller scales or looks up).
 */
function unpackSamples(data: ArrayLike<number>, n: number, width: number, height: number, depth: number, channels: number, name: string): Uint8Array | Uint8ClampedArray {
  if (depth === 8) {
    if (data.length < n * channels) throw new ImageDecodeError(`${name}: corrupt PNG: ${data.length} samples for ${n * channels}`);
    return data as Uint8Array;
  }
  const out = new Uint8Array(n * channels);
  if (depth === 16) {
    if (data.length < n * channels) throw new ImageDecodeError(`${name}: corrupt PNG: ${data.length} samples for ${n * channels}`);
    for (let i = 0; i < out.length; i++) out[i] = data[i] >>> 8;
    return out;
  }
  // depth 1, 2, 4: only grey (scaled) and palette (raw index) reach here; channels === 1.
  const rowBytes = Math.ceil((width * depth) / 8);
  if (data.length < rowBytes * height) throw new ImageDecodeError(`${name}: corrupt PNG: ${data.length} bytes for ${height} rows of ${rowBytes}`);
  const mask = (1 << depth) - 1;
  const perByte = 8 / depth;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = data[y * rowBytes + Math.floor(x / perByte)];
      const shift = 8 - depth * ((x % perByte) + 1);
      out[y * width + x] = (byte >> shift) & mask;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// JPEG

/** Walks the JPEG markers up to the first SOFn to read the size without decoding. */
function jpegSize(bytes: Uint8Array, name: string): { width: number; height: number } {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) throw new ImageDecodeError(`${name}: corrupt JPEG: expected a marker at byte ${p}`);
    const marker = bytes[p + 1];
    if (marker === 0xff) { p++; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { p += 2; continue; }
    if (marker === 0xd9 || marker === 0xda) break; // EOI / SOS before any frame header
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (len < 2) throw new ImageDecodeError(`${name}: corrupt JPEG: segment length ${len} at byte ${p}`);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (p + 9 > bytes.length) break;
      return { height: (bytes[p + 5] << 8) | bytes[p + 6], width: (bytes[p + 7] << 8) | bytes[p + 8] };
    }
    p += 2 + len;
  }
  throw new ImageDecodeError(`${name}: corrupt JPEG: no frame header (SOF) found`);
}

export function decodeJpeg(bytes: Uint8Array, opts: DecodeOptions = {}, name = '<jpeg>'): RgbImage {
  const { width: w0, height: h0 } = jpegSize(bytes, name);
  checkSize(w0, h0, opts, name);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true, // plain Uint8Array, not Node's Buffer: runs in browsers too
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: maxPixels / 1e6,
      // Component planes + output for the largest allowed image, with slack for tables.
      maxMemoryUsageInMB: Math.ceil((maxPixels * 8) / (1 << 20)) + 64,
    });
  } catch (e) {
    throw new ImageDecodeError(`${name}: corrupt or unsupported JPEG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { width, height, data } = img;
  checkSize(width, height, opts, name);
  if (data.length !== width * height * 3) throw new ImageDecodeError(`${name}: corrupt JPEG: ${data.length} bytes for ${width}×${height} RGB`);
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------------
// Browser inputs

/** ImageData-like RGBA pixels (canvas getImageData, ImageData): alpha is dropped. */
export function rgbFromRgba(img: { width: number; height: number; data: ArrayLike<number> }): RgbImage {
  const { width, height, data } = img;
  const n = width * height;
  if (data.length !== n * 4) throw new ImageDecodeError(`RGBA image: ${data.length} values for ${width}×${height}×4`);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) { out[3 * i] = data[4 * i]; out[3 * i + 1] = data[4 * i + 1]; out[3 * i + 2] = data[4 * i + 2]; }
  return { width, height, data: out };
}

/**
 * Browser: an ImageBitmap, HTMLImageElement, HTMLCanvasElement or OffscreenCanvas, read back
 * through an OffscreenCanvas. (Colour management of the browser's own decoder applies.)
 */
export function rgbFromCanvasSource(source: CanvasImageSource & { width: number; height: number }): RgbImage {
  const OC = (globalThis as { OffscreenCanvas?: typeof OffscreenCanvas }).OffscreenCanvas;
  if (!OC) throw new ImageDecodeError('rgbFromCanvasSource needs OffscreenCanvas (a browser or worker)');
  const { width, height } = source;
  checkSize(width, height, {}, '<canvas source>');
  const ctx = new OC(width, height).getContext('2d');
  if (!ctx) throw new ImageDecodeError('rgbFromCanvasSource: no 2d context');
  ctx.drawImage(source, 0, 0);
  return rgbFromRgba(ctx.getImageData(0, 0, width, height));
}

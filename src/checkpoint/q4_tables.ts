/**
 * Embedding tables stored as packed int4 (docs/packed-format.md): rows are read and dequantized
 * only for the tokens at hand, from the checkpoint file (or from bytes held in memory).
 *
 * - `.q4r` (the per-layer embedding table): one row record per token, one read.
 * - `.q4` (the tied token embedding, stored once as the LM head's int4 matrix): row `o` lives in
 *   block `o >> 2` with three neighbours; a lookup reads that block's codes and scales (one
 *   read of ~4.4 KB for E2B in blob version 3, two in version 2) and dequantizes the one row.
 */
import { MemorySource, type ByteSource } from '../io/byte_source.js';
import { Q4_GROUP } from '../kernels/q4.js';
import { dequantQ4BlockRow, dequantQ4Row, parseQ4Header, parseQ4RHeader, readScales, BLOB_HEADER, type ScaleDtype } from './packed_format.js';
import { dequantQ4CompactBlockRow, q4BlockBytes } from './q4_compact.js';
import { CheckpointError } from './safetensors.js';
import { StreamedTable } from './streamed_table.js';

/** Where a packed tensor's bytes are: a byte source and the tensor's first byte in it. */
export interface PackedLocation {
  source: ByteSource;
  offset: number;
  byteLength: number;
  /** "FILE: tensor 'NAME'" for error messages. */
  where: string;
}

/** A `.q4r` table; checks the header against the expected [rows, cols]. */
export async function q4RowTable(loc: PackedLocation, rows: number, cols: number, cacheRows = 4096): Promise<StreamedTable> {
  const info = parseQ4RHeader(await loc.source.read(loc.offset, BLOB_HEADER), loc.byteLength, loc.where);
  if (info.rows !== rows || info.cols !== cols) throw new CheckpointError(`${loc.where}: int4 table is [${info.rows}, ${info.cols}] but the config implies [${rows}, ${cols}]`);
  const base = loc.offset + BLOB_HEADER;
  return new StreamedTable(loc.source, base, rows, cols, 'U8', cacheRows, {
    rowBytes: info.rowBytes,
    async readRow(id) {
      const out = new Float32Array(cols);
      dequantQ4Row(await loc.source.read(base + id * info.rowBytes, info.rowBytes), info, out, loc.where, id);
      return out;
    },
  });
}

/** Rows of a `.q4` matrix (the tied embedding); checks the header against [rows, cols]. */
export async function q4BlockTable(loc: PackedLocation, rows: number, cols: number, cacheRows = 4096): Promise<StreamedTable> {
  const info = parseQ4Header(await loc.source.read(loc.offset, BLOB_HEADER), loc.byteLength, loc.where);
  if (info.outDim !== rows || info.inDim !== cols) throw new CheckpointError(`${loc.where}: packed int4 tensor is [${info.outDim}, ${info.inDim}] but the config implies [${rows}, ${cols}]`);
  const G = Math.ceil(cols / Q4_GROUP), codeBytes = G * 64, scaleCount = 4 * G, sb = info.scales === 'f16' ? 2 : 4;
  if (info.scales === 'u8log') { // version 3: one read of the row's block
    const bb = q4BlockBytes(G);
    return new StreamedTable(loc.source, loc.offset, rows, cols, 'U8', cacheRows, {
      rowBytes: bb,
      async readRow(id) {
        const out = new Float32Array(cols);
        dequantQ4CompactBlockRow(await loc.source.read(loc.offset + BLOB_HEADER + (id >> 2) * bb, bb), G, cols, id & 3, out, loc.where, id);
        return out;
      },
    });
  }
  return new StreamedTable(loc.source, loc.offset, rows, cols, 'U8', cacheRows, {
    rowBytes: codeBytes + scaleCount * sb,
    async readRow(id) {
      const b = id >> 2;
      const codes = await loc.source.read(loc.offset + info.codesOffset + b * codeBytes, codeBytes);
      const scales = readScales(await loc.source.read(loc.offset + info.scalesOffset + b * scaleCount * sb, scaleCount * sb), info.scales as ScaleDtype, scaleCount);
      const out = new Float32Array(cols);
      dequantQ4BlockRow(codes, scales, G, cols, id & 3, out, loc.where, id);
      return out;
    },
  });
}

/** The same location, with the tensor's bytes read into memory (tables kept resident). */
export async function inMemoryLocation(loc: PackedLocation): Promise<PackedLocation> {
  const bytes = await loc.source.read(loc.offset, loc.byteLength);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return { source: new MemorySource(copy, loc.source.name), offset: 0, byteLength: loc.byteLength, where: loc.where };
}

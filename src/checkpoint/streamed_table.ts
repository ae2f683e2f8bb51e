/**
 * An embedding table that stays on disk: rows are read on demand by byte offset (Node file
 * reads, browser Blob slices) and kept in a small LRU cache.
 *
 * This is Gemma 3n's "selective parameter activation" made concrete for the per-layer
 * embedding table: E2B's embed_tokens_per_layer holds ~2 B parameters, but each token
 * touches one row (L·P = 7680 values), so the working set is the rows of recent tokens.
 */
import type { ByteSource } from '../io/byte_source.js';
import { DTYPE_BYTES, toFloat32, type DType } from './dtype.js';
import type { EmbeddingTable } from './embedding_table.js';

export interface TableStats {
  lookups: number;
  hits: number;
  misses: number;
  bytesRead: number;
  /** Ids read from storage by the last lookup() call. */
  lastFetched: number[];
}

/**
 * How one row is fetched and widened, when it is not `cols` plain values at offset + id·rowBytes
 * (packed int4 tables: src/checkpoint/q4_tables.ts).
 */
export interface RowDecoder {
  /** Bytes read from storage per row (for the stats and the explain trace). */
  readonly rowBytes: number;
  readRow(id: number): Promise<Float32Array>;
}

export class StreamedTable implements EmbeddingTable {
  private readonly cache = new Map<number, Float32Array>();
  /** Bytes of one stored row. */
  readonly rowBytes: number;
  readonly stats: TableStats = { lookups: 0, hits: 0, misses: 0, bytesRead: 0, lastFetched: [] };

  constructor(
    private readonly source: ByteSource,
    /** Absolute byte offset of row 0. */
    private readonly offset: number,
    readonly rows: number,
    readonly cols: number,
    readonly dtype: DType,
    /** Rows kept in the LRU cache. */
    readonly cacheRows = 4096,
    /** A packed row format; default: `cols` values of `dtype` per row. */
    private readonly decoder: RowDecoder | null = null,
  ) {
    this.rowBytes = decoder ? decoder.rowBytes : cols * DTYPE_BYTES[dtype];
  }

  private readRow(id: number): Promise<Float32Array> {
    return this.decoder
      ? this.decoder.readRow(id)
      : this.source.read(this.offset + id * this.rowBytes, this.rowBytes).then((b) => toFloat32(b, this.dtype, this.cols));
  }

  async lookup(ids: ArrayLike<number>, out: Float32Array): Promise<void> {
    const c = this.cols;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < this.rows)) throw new RangeError(`embedding lookup: id ${id} outside [0, ${this.rows})`);
    }
    // The rows not cached are read up to READ_AHEAD at a time (a prompt's rows in one round of
    // reads rather than one after another); the pass below counts and caches exactly as reading
    // them in turn would. The rows are needed in `missing` order, so each is started in time.
    const missing = [...new Set(Array.from(ids))].filter((id) => !this.cache.has(id));
    const fetched = new Map<number, Promise<Float32Array>>();
    let next = 0;
    const readAhead = () => {
      for (; next < missing.length && fetched.size < READ_AHEAD; next++) {
        const p = this.readRow(missing[next]);
        p.catch(() => {}); // a failure is thrown where the row is awaited
        fetched.set(missing[next], p);
      }
    };
    readAhead();
    this.stats.lastFetched = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      this.stats.lookups++;
      let row = this.cache.get(id);
      if (row) {
        this.stats.hits++;
        this.cache.delete(id); // re-insert: Map order is the LRU order
      } else {
        this.stats.misses++;
        const early = fetched.get(id);
        fetched.delete(id); // a second miss of this id in this call (evicted meanwhile) reads again
        readAhead();
        row = await (early ?? this.readRow(id));
        this.stats.bytesRead += this.rowBytes;
        this.stats.lastFetched.push(id);
        if (this.cache.size >= this.cacheRows) this.cache.delete(this.cache.keys().next().value as number);
      }
      this.cache.set(id, row);
      out.set(row, i * c);
    }
  }

  /** Bytes held by the row cache. */
  get residentBytes(): number {
    return this.cache.size * c4(this.cols);
  }
}

const c4 = (cols: number): number => cols * 4;

/** Rows of one lookup read at the same time. */
const READ_AHEAD = 32;

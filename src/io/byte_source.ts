/**
 * Runtime-neutral random-access byte sources.
 *
 * A checkpoint may be 10 GB, so nothing here reads a whole file at once: the loader asks
 * for (offset, length) windows. Node files, browser Blobs/Files and in-memory ArrayBuffers
 * all fit behind this one interface; the Node file adapter lives in src/node/.
 */
export interface ByteSource {
  /** A name used in error messages (a file path, a File's name, "<memory>"). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; rejects if the range is out of bounds. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Optional: reads exactly `dst.length` bytes at `offset` into `dst` (no buffer of its own). */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
  /** Releases any handle held (file descriptors). Safe to call twice. */
  close?(): Promise<void>;
}

function checkRange(src: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new RangeError(`${src.name}: read of ${length} bytes at offset ${offset} is outside the file (size ${src.size})`);
  }
}

/** Reads `dst.length` bytes at `offset` into `dst`: straight from the file when the source can. */
export async function readInto(src: ByteSource, offset: number, dst: Uint8Array): Promise<void> {
  if (src.readInto) return src.readInto(offset, dst);
  dst.set(await src.read(offset, dst.length));
}

/** Bytes already in memory (tests, a browser fetch result, a generated model). */
export class MemorySource implements ByteSource {
  readonly size: number;
  constructor(
    private readonly bytes: Uint8Array,
    readonly name = '<memory>',
  ) {
    this.size = bytes.byteLength;
  }
  static from(buffer: ArrayBuffer | Uint8Array, name?: string): MemorySource {
    return new MemorySource(buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer), name);
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  async readInto(offset: number, dst: Uint8Array): Promise<void> {
    checkRange(this, offset, dst.length);
    dst.set(this.bytes.subarray(offset, offset + dst.length));
  }
}

/** A browser Blob or File: slices are read on demand, so the file is never held whole. */
export class BlobSource implements ByteSource {
  readonly size: number;
  readonly name: string;
  constructor(
    private readonly blob: Blob,
    name?: string,
  ) {
    this.size = blob.size;
    this.name = name ?? (blob as { name?: string }).name ?? '<blob>';
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
}

/** Where a model folder's files come from: Node directory, browser file list, or memory. */
export interface FileProvider {
  /** Human-readable location for error messages. */
  readonly location: string;
  exists(name: string): Promise<boolean>;
  open(name: string): Promise<ByteSource>;
  readText(name: string): Promise<string>;
}

/** A folder held in memory: a map from file name to bytes or Blob. */
export class MemoryFolder implements FileProvider {
  constructor(
    private readonly files: Map<string, Uint8Array | Blob>,
    readonly location = '<memory>',
  ) {}
  async exists(name: string): Promise<boolean> {
    return this.files.has(name);
  }
  async open(name: string): Promise<ByteSource> {
    const f = this.files.get(name);
    if (f === undefined) throw new Error(`${this.location}/${name}: no such file`);
    return f instanceof Uint8Array ? new MemorySource(f, `${this.location}/${name}`) : new BlobSource(f, `${this.location}/${name}`);
  }
  async readText(name: string): Promise<string> {
    const src = await this.open(name);
    return new TextDecoder().decode(await src.read(0, src.size));
  }
}

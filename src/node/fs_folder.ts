/** Node adapter: a model folder on disk, read by offset through a file handle. */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSource, FileProvider } from '../io/byte_source.js';

/**
 * A file read by offset. Each read opens, reads and closes the file, so no descriptor outlives
 * a call (a forgotten close can never leak one); opening costs microseconds, reads are tensor-
 * or row-sized.
 */
export class NodeFileSource implements ByteSource {
  private closed = false;
  private constructor(
    private readonly path: string,
    readonly name: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<NodeFileSource> {
    const { size } = await stat(path);
    return new NodeFileSource(path, path, size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(offset, out);
    return out;
  }

  /** Reads into `out` (e.g. a view of WASM memory: a packed weight goes from the page cache straight to kernel memory). */
  async readInto(offset: number, out: Uint8Array): Promise<void> {
    const length = out.length;
    if (this.closed) throw new Error(`${this.name}: file already closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${this.name}: read of ${length} bytes at offset ${offset} is outside the file (size ${this.size})`);
    }
    const handle: FileHandle = await open(this.path, 'r');
    try {
      let done = 0;
      while (done < length) {
        // Node caps a single read at 2 GiB.
        const { bytesRead } = await handle.read(out, done, Math.min(length - done, 1 << 30), offset + done);
        if (bytesRead === 0) throw new Error(`${this.name}: unexpected end of file at ${offset + done} (was it truncated while open?)`);
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

export class NodeFolder implements FileProvider {
  constructor(readonly location: string) {}
  async exists(name: string): Promise<boolean> {
    try {
      return (await stat(join(this.location, name))).isFile();
    } catch {
      return false;
    }
  }
  open(name: string): Promise<ByteSource> {
    return NodeFileSource.open(join(this.location, name));
  }
  readText(name: string): Promise<string> {
    return readFile(join(this.location, name), 'utf8');
  }
}

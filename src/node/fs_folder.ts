/** Node adapter: a model folder on disk, read by offset through a file handle. */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteSource, FileProvider } from '../io/byte_source.js';

/**
 * A file read by offset. The descriptor is opened by the first read and closed once no read has
 * been in flight for LINGER_MS (or by close()), so a burst of reads — a model load issues ~1,000 —
 * costs one open and one close instead of one each, and a forgotten close() still leaks nothing:
 * the descriptor goes when the reads stop (the timer does not keep the process alive).
 */
export class NodeFileSource implements ByteSource {
  private closed = false;
  private handle: Promise<FileHandle> | null = null;
  private active = 0;
  private linger: ReturnType<typeof setTimeout> | null = null;
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
    const handle = await this.acquire();
    try {
      let done = 0;
      while (done < length) {
        // Node caps a single read at 2 GiB.
        const { bytesRead } = await handle.read(out, done, Math.min(length - done, 1 << 30), offset + done);
        if (bytesRead === 0) throw new Error(`${this.name}: unexpected end of file at ${offset + done} (was it truncated while open?)`);
        done += bytesRead;
      }
    } finally {
      this.releaseHandle();
    }
  }

  private acquire(): Promise<FileHandle> {
    this.active++;
    if (this.linger !== null) {
      clearTimeout(this.linger);
      this.linger = null;
    }
    if (this.handle === null) {
      const h = open(this.path, 'r');
      h.catch(() => {
        if (this.handle === h) this.handle = null; // the next read tries again
      });
      this.handle = h;
    }
    return this.handle;
  }

  private releaseHandle(): void {
    if (--this.active > 0) return;
    this.linger = setTimeout(() => void this.closeHandle(), LINGER_MS);
    this.linger.unref?.();
  }

  private async closeHandle(): Promise<void> {
    this.linger = null;
    const h = this.handle;
    if (h === null || this.active > 0) return;
    this.handle = null;
    await (await h.catch(() => null))?.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.linger !== null) clearTimeout(this.linger);
    if (this.active === 0) await this.closeHandle(); // reads in flight close it when they end
  }
}

/** How long a file stays open after its last read. */
const LINGER_MS = 50;

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

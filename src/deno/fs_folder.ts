/**
 * Deno adapter: a model folder on disk, read by offset with Deno.open / seek / read
 * (the Deno twin of src/node/fs_folder.ts). Needs --allow-read.
 *
 * The Deno namespace is reached through globalThis with the few members used typed here, so
 * this file compiles with tsc (no Deno type package) and runs unchanged under Deno.
 */
import type { ByteSource, FileProvider } from '../io/byte_source.js';

interface DenoFsFile {
  seek(offset: number, whence: number): Promise<number>;
  read(p: Uint8Array): Promise<number | null>;
  stat(): Promise<{ size: number; isFile: boolean }>;
  close(): void;
}
interface DenoFs {
  open(path: string, opts: { read: true }): Promise<DenoFsFile>;
  stat(path: string): Promise<{ isFile: boolean }>;
  readTextFile(path: string): Promise<string>;
  SeekMode: { Start: number };
}

function deno(): DenoFs {
  const d = (globalThis as { Deno?: DenoFs }).Deno;
  if (!d) throw new Error('src/deno/fs_folder.ts runs under Deno only (use src/node/fs_folder.ts in Node, MemoryFolder/BlobSource in browsers)');
  return d;
}

const join = (dir: string, name: string): string => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

export class DenoFileSource implements ByteSource {
  // Reads on one file are serialized: seek + read is not atomic.
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    private file: DenoFsFile | null,
    readonly name: string,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<DenoFileSource> {
    const file = await deno().open(path, { read: true });
    const { size } = await file.stat();
    return new DenoFileSource(file, path, size);
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    const run = this.queue.then(() => this.readNow(offset, length));
    this.queue = run.catch(() => {});
    return run;
  }

  private async readNow(offset: number, length: number): Promise<Uint8Array> {
    const f = this.file;
    if (!f) throw new Error(`${this.name}: file already closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${this.name}: read of ${length} bytes at offset ${offset} is outside the file (size ${this.size})`);
    }
    const out = new Uint8Array(length);
    await f.seek(offset, deno().SeekMode.Start);
    let done = 0;
    while (done < length) {
      const n = await f.read(out.subarray(done, Math.min(length, done + (1 << 30))));
      if (n === null || n === 0) throw new Error(`${this.name}: unexpected end of file at ${offset + done}`);
      done += n;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.queue;
    const f = this.file;
    this.file = null;
    f?.close();
  }
}

export class DenoFolder implements FileProvider {
  constructor(readonly location: string) {}
  async exists(name: string): Promise<boolean> {
    try {
      return (await deno().stat(join(this.location, name))).isFile;
    } catch {
      return false;
    }
  }
  open(name: string): Promise<ByteSource> {
    return DenoFileSource.open(join(this.location, name));
  }
  readText(name: string): Promise<string> {
    return deno().readTextFile(join(this.location, name));
  }
}

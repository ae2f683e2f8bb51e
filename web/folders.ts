/** Model folders in a page: files the user picked, or files a server offers over HTTP. */
import { MemoryFolder, type ByteSource, type FileProvider } from '../src/io/byte_source.js';

/**
 * Files from <input type=file webkitdirectory> (each has webkitRelativePath "folder/name")
 * or from a multi-file input. Files are Blobs, read slice by slice (BlobSource), never whole.
 */
export function pickedFolder(files: FileList | File[]): MemoryFolder {
  const map = new Map<string, Blob>();
  let top = '';
  for (const f of Array.from(files)) {
    const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
    const parts = rel.split('/');
    top ||= parts.length > 1 ? parts[0] : '';
    // Only files directly in the chosen folder (a checkpoint's files are flat).
    if (parts.length <= 2) map.set(parts[parts.length - 1], f);
  }
  return new MemoryFolder(map, top || '<picked files>');
}

/** One file over HTTP, read with Range requests. */
class HttpSource implements ByteSource {
  constructor(private readonly url: string, readonly name: string, readonly size: number) {}
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${this.name}: read of ${length} bytes at offset ${offset} is outside the file (size ${this.size})`);
    }
    if (length === 0) return new Uint8Array(0);
    const r = await fetch(this.url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (r.status !== 206 && r.status !== 200) throw new Error(`${this.name}: HTTP ${r.status}`);
    const b = new Uint8Array(await r.arrayBuffer());
    // A server that ignores Range answers 200 with the whole file.
    const out = r.status === 200 ? b.subarray(offset, offset + length) : b;
    if (out.byteLength !== length) throw new Error(`${this.name}: short read (${out.byteLength} of ${length} bytes at ${offset})`);
    return out;
  }
}

/** A folder served at `base` (ending in '/') whose file sizes are listed in `files`. */
export class HttpFolder implements FileProvider {
  constructor(readonly location: string, private readonly files: Record<string, number>) {}
  /** Reads the listing `${base}?list` ({ name: size }) that scripts/web-server.mjs serves. */
  static async open(base: string): Promise<HttpFolder> {
    const r = await fetch(`${base}?list`);
    if (!r.ok) throw new Error(`${base}: HTTP ${r.status}`);
    return new HttpFolder(base, await r.json() as Record<string, number>);
  }
  async exists(name: string): Promise<boolean> {
    return Object.hasOwn(this.files, name);
  }
  async open(name: string): Promise<ByteSource> {
    if (!Object.hasOwn(this.files, name)) throw new Error(`${this.location}${name}: no such file`);
    return new HttpSource(this.location + encodeURIComponent(name), this.location + name, this.files[name]);
  }
  async readText(name: string): Promise<string> {
    const s = await this.open(name);
    return new TextDecoder().decode(await s.read(0, s.size));
  }
}

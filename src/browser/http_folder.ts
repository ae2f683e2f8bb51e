/**
 * A model folder at a URL, read with HTTP Range requests: a Hugging Face repository
 * (`https://huggingface.co/google/gemma-3n-E2B-it/resolve/main/`), a packed int4 folder written
 * by `gemma3n quantize`, or any static server that honours Range. No listing is needed: a file
 * exists when a HEAD request for it succeeds, and the loader asks only for the names it knows
 * (config.json, model.safetensors or model.safetensors.index.json and its shards, tokenizer
 * files). A server that lists a folder (scripts/web-server.mjs: `?list`) saves those probes.
 *
 * Bytes are fetched in fixed chunks (8 MiB; the last few stay in memory) and each chunk is kept
 * in a `ByteStore` (the browser's Cache API by default), together with the probed file sizes, so a second visit
 * loads without touching the network. Works in pages, workers and Deno (anything with fetch).
 */
import type { ByteSource, FileProvider } from '../io/byte_source.js';

/** Where fetched chunks are kept between visits; `null` results mean "not stored". */
export interface ByteStore {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

/** The Cache API (window.caches) as a ByteStore; keys are synthetic URLs under the folder's. */
export async function cacheApiStore(name = 'gemma3n-ts-v1'): Promise<ByteStore | null> {
  const caches = (globalThis as { caches?: CacheStorage }).caches;
  if (!caches) return null; // insecure origins and some runtimes have no Cache API
  const cache = await caches.open(name);
  return {
    async get(key) {
      const r = await cache.match(key);
      return r ? new Uint8Array(await r.arrayBuffer()) : null;
    },
    async put(key, bytes) {
      await cache.put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(bytes.byteLength) } }));
    },
  };
}

export interface HttpProgress {
  /** The file a chunk belongs to. */
  file: string;
  /** Bytes fetched over the network so far (all files of this folder). */
  downloaded: number;
  /** Bytes served from the store instead (all files of this folder). */
  fromCache: number;
}

export interface HttpFolderOptions {
  /** Kept chunks and sizes; default: the Cache API when the page has it. `null`: no caching. */
  store?: ByteStore | null;
  /** Extra request headers, e.g. `{ Authorization: 'Bearer hf_…' }` for gated repositories. */
  headers?: Record<string, string>;
  /** Called after every chunk, fetched or found in the store. */
  onProgress?: (p: HttpProgress) => void;
  /** Chunk size in bytes (default 8 MiB). */
  chunkBytes?: number;
  /** Use the server's `?list` JSON ({ name: size }) instead of probing each file. */
  listing?: boolean;
}

const DEFAULT_CHUNK = 8 << 20;
const PARALLEL = 4;
/** Chunks kept in memory (8 × 8 MiB); a request for one in flight waits for it too. */
const RECENT_CHUNKS = 8;

/** A folder of files under `base` (a URL ending in '/'). */
export class HttpFolder implements FileProvider {
  readonly location: string;
  /** name -> size in bytes, or -1 when the server has no such file. */
  private sizes = new Map<string, number>();
  private readonly chunk: number;
  private downloaded = 0;
  private fromCache = 0;

  private constructor(
    base: string,
    private readonly store: ByteStore | null,
    private readonly opts: HttpFolderOptions,
  ) {
    this.location = base.endsWith('/') ? base : `${base}/`;
    this.chunk = opts.chunkBytes ?? DEFAULT_CHUNK;
  }

  static async open(base: string | URL, opts: HttpFolderOptions = {}): Promise<HttpFolder> {
    const url = new URL(String(base), (globalThis as { location?: { href: string } }).location?.href);
    const store = opts.store === undefined ? await cacheApiStore() : opts.store;
    const f = new HttpFolder(url.href, store, opts);
    const saved = await store?.get(f.key('sizes'));
    if (saved) for (const [k, v] of Object.entries(JSON.parse(new TextDecoder().decode(saved)) as Record<string, number>)) f.sizes.set(k, v);
    if (opts.listing && f.sizes.size === 0) {
      const r = await fetch(`${f.location}?list`, { headers: opts.headers });
      if (!r.ok) throw new Error(`${f.location}?list: HTTP ${r.status}`);
      for (const [k, v] of Object.entries((await r.json()) as Record<string, number>)) f.sizes.set(k, v);
      f.listed = true;
      await f.saveSizes();
    }
    return f;
  }

  private listed = false;

  /** Bytes fetched over the network and bytes served from the store, so far. */
  get stats(): { downloaded: number; fromCache: number } {
    return { downloaded: this.downloaded, fromCache: this.fromCache };
  }

  private url(name: string): string {
    return new URL(name.split('/').map(encodeURIComponent).join('/'), this.location).href;
  }

  /** A synthetic URL naming a stored item (Cache API keys must be http(s) URLs). */
  private key(what: string): string {
    const u = new URL(this.location);
    u.searchParams.set('gemma3n-store', what);
    return u.href;
  }

  private async saveSizes(): Promise<void> {
    await this.store?.put(this.key('sizes'), new TextEncoder().encode(JSON.stringify(Object.fromEntries(this.sizes))));
  }

  /** The file's size, probing the server once (HEAD; a 1-byte Range GET when HEAD gives none). */
  private async size(name: string): Promise<number> {
    const known = this.sizes.get(name);
    if (known !== undefined) return known;
    if (this.listed) return -1;
    let size = -1;
    const head = await fetch(this.url(name), { method: 'HEAD', headers: this.opts.headers });
    if (head.ok) {
      const len = head.headers.get('content-length');
      if (len !== null && head.headers.get('content-encoding') === null) size = Number(len);
      else size = await this.sizeByRange(name);
    } else if (head.status !== 404 && head.status !== 403 && head.status !== 401) {
      throw new Error(`${this.url(name)}: HTTP ${head.status}`);
    } else if (head.status !== 404) {
      throw new Error(`${this.url(name)}: HTTP ${head.status} (a gated repository needs an access token)`);
    }
    this.sizes.set(name, size);
    await this.saveSizes();
    return size;
  }

  private async sizeByRange(name: string): Promise<number> {
    const r = await fetch(this.url(name), { headers: { ...this.opts.headers, Range: 'bytes=0-0' } });
    const total = /\/(\d+)$/.exec(r.headers.get('content-range') ?? '');
    if (r.status === 206 && total) {
      await r.body?.cancel();
      return Number(total[1]);
    }
    return (await r.arrayBuffer()).byteLength; // no Range support: the whole body is the file
  }

  async exists(name: string): Promise<boolean> {
    return (await this.size(name)) >= 0;
  }

  async open(name: string): Promise<ByteSource> {
    const size = await this.size(name);
    if (size < 0) throw new Error(`${this.url(name)}: no such file (HTTP 404)`);
    return new HttpChunkedSource(this, name, this.url(name), size);
  }

  async readText(name: string): Promise<string> {
    const src = await this.open(name);
    return new TextDecoder().decode(await src.read(0, src.size));
  }

  /** Recently used chunks (the loader reads many small tensors from one chunk), in LRU order. */
  private recent = new Map<string, Promise<Uint8Array>>();

  /** Chunk `i` of a file: from memory, else the store, else one Range request (then stored). */
  chunkOf(name: string, url: string, size: number, i: number): Promise<Uint8Array> {
    const key = this.key(`${name}#${this.chunk}:${i}`);
    let p = this.recent.get(key);
    if (p) {
      this.recent.delete(key); // re-insert: Map order is the LRU order
    } else {
      p = this.fetchChunk(name, url, size, i, key);
      p.catch(() => this.recent.delete(key));
      if (this.recent.size >= RECENT_CHUNKS) this.recent.delete(this.recent.keys().next().value as string);
    }
    this.recent.set(key, p);
    return p;
  }

  private async fetchChunk(name: string, url: string, size: number, i: number, key: string): Promise<Uint8Array> {
    const start = i * this.chunk,
      end = Math.min(size, start + this.chunk);
    const kept = await this.store?.get(key);
    if (kept && kept.byteLength === end - start) {
      this.fromCache += kept.byteLength;
      this.opts.onProgress?.({ file: name, downloaded: this.downloaded, fromCache: this.fromCache });
      return kept;
    }
    const r = await fetch(url, { headers: { ...this.opts.headers, Range: `bytes=${start}-${end - 1}` } });
    if (r.status !== 206 && r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
    let bytes = new Uint8Array(await r.arrayBuffer());
    if (r.status === 200) bytes = bytes.slice(start, end); // the server ignored Range: whole file
    if (bytes.byteLength !== end - start) throw new Error(`${url}: short read (${bytes.byteLength} of ${end - start} bytes at ${start})`);
    this.downloaded += bytes.byteLength;
    await this.store?.put(key, bytes);
    this.opts.onProgress?.({ file: name, downloaded: this.downloaded, fromCache: this.fromCache });
    return bytes;
  }

  get chunkBytes(): number {
    return this.chunk;
  }
}

/** One file of an HttpFolder: reads are assembled from its chunks (up to 4 fetched at once). */
class HttpChunkedSource implements ByteSource {
  constructor(
    private readonly folder: HttpFolder,
    private readonly file: string,
    readonly name: string,
    readonly size: number,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`${this.name}: read of ${length} bytes at offset ${offset} is outside the file (size ${this.size})`);
    }
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const c = this.folder.chunkBytes;
    const first = Math.floor(offset / c),
      last = Math.floor((offset + length - 1) / c);
    let next = first;
    const worker = async (): Promise<void> => {
      while (next <= last) {
        const i = next++;
        const bytes = await this.folder.chunkOf(this.file, this.name, this.size, i);
        const from = Math.max(offset, i * c),
          to = Math.min(offset + length, i * c + bytes.byteLength);
        out.set(bytes.subarray(from - i * c, to - i * c), from - offset);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, last - first + 1) }, worker));
    return out;
  }
}

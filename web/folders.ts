/** Model folders in a page: files the user picked, or files a server offers over HTTP. */
import { MemoryFolder } from '../src/io/byte_source.js';
import { HttpFolder } from '../src/browser/http_folder.js';

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

export { HttpFolder };

/** A folder scripts/web-server.mjs mounts and lists (`?list`): tests and `--model`; nothing cached. */
export function listedFolder(base: string): Promise<HttpFolder> {
  return HttpFolder.open(base, { listing: true, store: null });
}

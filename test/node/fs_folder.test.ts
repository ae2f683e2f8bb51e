/**
 * src/node/fs_folder.ts NodeFileSource: a burst of reads shares one descriptor, which is closed
 * once the reads stop even without close() (nothing leaks); reads are exact, out-of-range and
 * after-close reads are refused, and a file cut short while open is reported.
 */
import { mkdtempSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeFileSource } from '../../src/node/fs_folder.js';

const openFds = () => readdirSync('/proc/self/fd').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('NodeFileSource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'g3n-fs-'));
  const bytes = new Uint8Array(1 << 16).map((_, i) => (i * 7 + 3) & 255);
  const file = join(dir, 'f.bin');
  writeFileSync(file, bytes);

  it('concurrent reads are exact and share one descriptor, closed when the reads stop (no close() needed)', async () => {
    const before = openFds();
    const src = await NodeFileSource.open(file);
    const reads = Array.from({ length: 64 }, (_, k) => src.read(k * 1000, 777));
    const opened = openFds();
    const got = await Promise.all(reads);
    got.forEach((b, k) => expect(Buffer.from(b).equals(Buffer.from(bytes.subarray(k * 1000, k * 1000 + 777)))).toBe(true));
    expect(openFds() - before).toBeLessThanOrEqual(1);
    expect(opened - before).toBeLessThanOrEqual(1);
    await sleep(120);
    expect(openFds()).toBe(before); // the descriptor went with the last read
    expect(Array.from(await src.read(5, 3))).toEqual(Array.from(bytes.subarray(5, 8))); // and comes back for the next
    await src.close();
    expect(openFds()).toBe(before);
    await expect(src.read(0, 1)).rejects.toThrow(/already closed/);
  });

  it('refuses reads outside the file and names a file cut short while open', async () => {
    const src = await NodeFileSource.open(file);
    await expect(src.read(bytes.length - 2, 3)).rejects.toThrow(/f\.bin: read of 3 bytes at offset 65534 is outside the file/);
    const cut = join(dir, 'cut.bin');
    writeFileSync(cut, bytes);
    const c = await NodeFileSource.open(cut);
    truncateSync(cut, 100);
    await expect(c.read(50, 100)).rejects.toThrow(/cut\.bin: unexpected end of file at 100/);
    await c.close();
    await src.close();
  });
});

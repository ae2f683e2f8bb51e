/** A streamed per-layer-embedding table (rows read on demand, LRU-cached) gives exactly the same logits as a resident one. */
import { describe, expect, it } from 'vitest';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { StreamedTable } from '../../src/checkpoint/streamed_table.js';
import { MemorySource } from '../../src/io/byte_source.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { goldenFolder } from '../helpers.js';

describe('streamed per-layer embedding table', () => {
  it('streamed PLE rows give bit-identical logits and fetch only the rows of new tokens', async () => {
    const k = new TsKernels();
    const { model: resident } = await Gemma3nTextModel.load(goldenFolder('text-tiny-a'), k);
    const { model: streamed, checkpoint } = await Gemma3nTextModel.load(goldenFolder('text-tiny-a'), k, { ple: 'stream', pleCacheRows: 4 });
    const table = streamed.weights.embed_tokens_per_layer as StreamedTable;
    expect(table).toBeInstanceOf(StreamedTable);
    const ids = [243, 106, 75, 367, 473, 106, 75];
    const a = await resident.forward(ids, resident.newCache(), { logits: 'all' });
    const b = await streamed.forward(ids, streamed.newCache(), { logits: 'all' });
    expect(Array.from(b.logits)).toEqual(Array.from(a.logits));
    // 5 distinct ids, cache of 4 rows: ids 106 and 75 repeat while still cached.
    expect(table.stats.misses).toBe(5);
    expect(table.stats.hits).toBe(2);
    expect(table.stats.bytesRead).toBe(5 * 6 * 16 * 4); // rows of L*P f32 values
    await checkpoint.close();
  });

  it('a lookup reads its missing rows together (32 read ahead) and counts, caches and evicts as reading them in turn', async () => {
    const rows = 100,
      cols = 3;
    const data = new Float32Array(rows * cols).map((_, i) => i);
    let inFlight = 0,
      most = 0,
      reads = 0;
    const mem = new MemorySource(new Uint8Array(data.buffer));
    const source = {
      name: 't',
      size: mem.size,
      read: async (o: number, n: number) => {
        reads++;
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        return mem.read(o, n);
      },
    };
    const ids = [5, 7, 5, 9, 11, 7, 13, 5, ...Array.from({ length: 60 }, (_, i) => 20 + i)];
    const table = new StreamedTable(source, 0, rows, cols, 'F32', 3);
    const out = new Float32Array(ids.length * cols);
    await table.lookup(ids, out);
    ids.forEach((id, i) => expect(Array.from(out.subarray(i * cols, (i + 1) * cols))).toEqual([id * 3, id * 3 + 1, id * 3 + 2]));
    // in turn, with 3 rows cached: 5 7 (5 hit) 9 11 (7 evicted: miss) 13 (5 evicted: miss), then 60 new rows
    expect(table.stats.misses).toBe(ids.length - 1);
    expect(table.stats.hits).toBe(1);
    expect(reads).toBe(ids.length - 1);
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(33); // 32 read ahead, plus the row of a second miss (evicted meanwhile), read where it is needed
    await expect(table.lookup([1, 100], out)).rejects.toThrow(/id 100 outside \[0, 100\)/);
  });
});

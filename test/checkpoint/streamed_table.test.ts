/** A streamed per-layer-embedding table (rows read on demand, LRU-cached) gives exactly the same logits as a resident one. */
import { describe, expect, it } from 'vitest';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { StreamedTable } from '../../src/checkpoint/streamed_table.js';
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
});

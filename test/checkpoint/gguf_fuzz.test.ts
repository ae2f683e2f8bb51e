/**
 * Fuzzing the GGUF reader: a valid GGUF of the tiny golden model text-tiny-a (F32 and Q4_0
 * tensors, full metadata), then truncations at every header position, seeded random byte
 * flips in the header, and hand-made bad files (huge counts, huge strings and arrays, bad
 * types, overlapping / misaligned / out-of-file offsets, too many dims). Each case must either
 * open (and then load as a model or fail with a clear error) or fail with a CheckpointError
 * naming the file, quickly and without a giant allocation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { parseModelConfig } from '../../src/checkpoint/config.js';
import { ggufExport } from '../../src/checkpoint/gguf/export.js';
import { GgufFolder } from '../../src/checkpoint/gguf/folder.js';
import { GgufFile } from '../../src/checkpoint/gguf/reader.js';
import { MemorySink, writeGguf } from '../../src/checkpoint/gguf/writer.js';
import { CheckpointError } from '../../src/checkpoint/safetensors.js';
import { MemorySource } from '../../src/io/byte_source.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { goldenFolder } from '../helpers.js';

const NAME = 'fuzz.gguf';
let valid: Uint8Array;
let headerEnd = 0;

beforeAll(async () => {
  const folder = goldenFolder('text-tiny-a');
  const config = parseModelConfig(await folder.readText('config.json')).text;
  const store = await Checkpoint.open(folder);
  const { metadata, tensors } = ggufExport(store, config, { type: 'q4_0', vocab: null });
  const sink = new MemorySink();
  await writeGguf(sink, metadata, tensors);
  await store.close();
  valid = sink.bytes();
  headerEnd = (await GgufFile.open(new MemorySource(valid))).dataOffset;
});

/** Opens bytes as GGUF and, if that works, loads the model; returns the error, if any. */
async function attempt(bytes: Uint8Array): Promise<Error | null> {
  const t0 = performance.now();
  try {
    const folder = await GgufFolder.open(new MemorySource(bytes, NAME));
    await Gemma3nTextModel.load(folder, new TsKernels());
    return null;
  } catch (e) {
    return e as Error;
  } finally {
    expect(performance.now() - t0, 'a case must not hang').toBeLessThan(5000);
  }
}

function expectClear(e: Error | null): void {
  if (e === null) return;
  // Open failures are CheckpointErrors naming the file; a file that opens may still fail the
  // loader's config/shape checks (also naming the file or tensor).
  expect(e instanceof CheckpointError || e instanceof RangeError || /config\.json|tensor|field/.test(e.message), `${e.name}: ${e.message}`).toBe(true);
  expect(e.message.length).toBeGreaterThan(10);
}

describe('GGUF reader under bad input', () => {
  it('the valid file loads', async () => {
    expect(await attempt(valid)).toBeNull();
  });

  it('every truncation inside the header fails with a CheckpointError naming the file', async () => {
    const step = Math.max(1, Math.floor(headerEnd / 400));
    for (let n = 0; n < headerEnd; n += step) {
      const e = await attempt(valid.subarray(0, n));
      expect(e, `truncated at ${n}`).toBeInstanceOf(CheckpointError);
      expect(e!.message.startsWith(NAME)).toBe(true);
    }
    // cut inside the data: the tensor that runs past the end is named
    const e = await attempt(valid.subarray(0, valid.length - 100));
    expect(e?.message).toMatch(/fuzz\.gguf: tensor '.*': data .* runs past the end/);
  });

  it('seeded random byte flips in the header never crash, hang or allocate wildly', async () => {
    let x = 2024;
    const rand = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 300; i++) {
      const b = valid.slice();
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) b[Math.floor(rand() * headerEnd)] = Math.floor(rand() * 256);
      expectClear(await attempt(b));
    }
    expect(process.memoryUsage().rss - rss0).toBeLessThan(1024 * 2 ** 20);
  });

  const u32 = (v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    return b;
  };
  const u64 = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  const cat = (...p: Uint8Array[]) => {
    const o = new Uint8Array(p.reduce((a, x) => a + x.length, 0));
    let k = 0;
    for (const x of p) {
      o.set(x, k);
      k += x.length;
    }
    return o;
  };
  const str = (s: string) => {
    const e = new TextEncoder().encode(s);
    return cat(u64(BigInt(e.length)), e);
  };
  const head = (tensors: bigint, kvs: bigint) => cat(u32(0x46554747), u32(3), u64(tensors), u64(kvs));
  const pad = (b: Uint8Array) => cat(b, new Uint8Array(64));
  const open = (b: Uint8Array) => GgufFile.open(new MemorySource(b, NAME));

  it.each([
    ['not GGUF', cat(u32(0x12345678), new Uint8Array(40)), /not a GGUF file/],
    ['version 1', cat(u32(0x46554747), u32(1), new Uint8Array(40)), /version 1 is not supported/],
    ['2^60 tensors', pad(head(1n << 60n, 0n)), /tensor count .* (impossible|beyond)/],
    ['2^40 metadata keys', pad(head(0n, 1n << 40n)), /metadata count .* impossible/],
    ['string of 2^50 bytes', pad(cat(head(0n, 1n), u64(1n << 50n))), /string length .* past the end/],
    ['unknown value type', pad(cat(head(0n, 1n), str('k'), u32(99))), /metadata 'k': unknown value type 99/],
    ['array of 2^40 u32', pad(cat(head(0n, 1n), str('k'), u32(9), u32(4), u64(1n << 40n))), /metadata 'k': 1099511627776 elements .* cannot fit/],
    ['array of 2^40 strings', pad(cat(head(0n, 1n), str('k'), u32(9), u32(8), u64(1n << 40n))), /cannot fit/],
    ['bool holding 7', pad(cat(head(0n, 1n), str('k'), u32(7), Uint8Array.of(7))), /bool holds 7/],
    ['nested arrays', pad(cat(head(0n, 1n), str('k'), u32(9), u32(9), u64(1n), u32(9), u64(1n), u32(9), u64(1n), u32(9), u64(1n))), /nested/],
    ['duplicate key', pad(cat(head(0n, 2n), str('k'), u32(4), u32(1), str('k'), u32(4), u32(1))), /'k' appears twice/],
    ['5 dims', pad(cat(head(1n, 0n), str('t'), u32(5))), /tensor 't': 5 dimensions/],
    ['unknown ggml type', pad(cat(head(1n, 0n), str('t'), u32(1), u64(32n), u32(77), u64(0n))), /tensor 't': unknown ggml type 77/],
    ['Q4_0 row of 33', pad(cat(head(1n, 0n), str('t'), u32(1), u64(33n), u32(2), u64(0n))), /multiple of 32/],
    ['misaligned offset', pad(cat(head(1n, 0n), str('t'), u32(1), u64(4n), u32(0), u64(4n))), /not a multiple of the alignment/],
    ['data past the end', pad(cat(head(1n, 0n), str('t'), u32(1), u64(64n), u32(0), u64(0n))), /tensor 't': data \[0, 256\) runs past the end/],
    ['huge shape', pad(cat(head(1n, 0n), str('t'), u32(2), u64(1n << 40n), u64(1n << 40n), u32(0), u64(0n))), /larger than the file/],
    [
      'overlapping tensors',
      cat(head(2n, 0n), str('a'), u32(1), u64(16n), u32(0), u64(0n), str('b'), u32(1), u64(16n), u32(0), u64(32n - 32n), new Uint8Array(200)),
      /'b' appears twice|overlap/,
    ],
  ] as [string, Uint8Array, RegExp][])('%s: a clear CheckpointError', async (_name, bytes, msg) => {
    const err = await open(bytes).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err!.message).toMatch(msg);
    expect(err!.message.startsWith(NAME)).toBe(true);
  });

  it('a file without the gemma3n architecture or its metadata is refused by name', async () => {
    const sink = new MemorySink();
    await writeGguf(sink, [{ key: 'general.architecture', type: 'string', value: 'llama' }], []);
    await expect(GgufFolder.open(new MemorySource(sink.bytes(), NAME))).rejects.toThrow(/architecture 'llama' is not supported \(gemma3n, gemma4\)/);
    const sink2 = new MemorySink();
    await writeGguf(sink2, [{ key: 'general.architecture', type: 'string', value: 'gemma3n' }], []);
    await expect(GgufFolder.open(new MemorySource(sink2.bytes(), NAME))).rejects.toThrow(/metadata 'gemma3n.block_count' is missing/);
  });
});

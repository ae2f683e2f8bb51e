/**
 * Renders the explain trace of one generated token as a few lines a learner can read:
 * which layers ran (sliding or full attention, where their K/V came from, how sparse the FFN
 * was), which per-layer-embedding rows were needed and fetched, and the KV cache size.
 */
import type { StepExplain } from '../model/explain.js';

const kb = (n: number): string => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MB` : `${(n / 1024).toFixed(1)} KB`);

export function formatExplain(e: StepExplain, token: number, piece?: string): string {
  const lines: string[] = [];
  const at = e.tokens === 1 ? `position ${e.position}` : `positions ${e.position}..${(e.position ?? 0) + (e.tokens ?? 1) - 1} (prefill of ${e.tokens})`;
  lines.push(`token ${token}${piece !== undefined ? ` ${JSON.stringify(piece)}` : ''} from ${at}`);
  const looked = e.pleRowsLookedUp ?? [];
  const fetched = e.pleRowsFetched;
  lines.push(
    `  per-layer embeddings: ${looked.length} row(s) needed${fetched === null || fetched === undefined ? ' (table resident in memory)' : `, ${fetched.length} read from storage (${kb(e.pleBytesFetched ?? 0)}), ${looked.length - fetched.length} from the row cache`}`,
  );
  for (const l of e.layers ?? []) {
    const kv = l.kvSource === l.index ? 'own K/V' : `K/V shared from layer ${l.kvSource}`;
    const ffn = l.ffnActiveFraction < 1 ? `FFN ${(100 * l.ffnActiveFraction).toFixed(1)}% of ${l.ffnWidth} active (gaussian top-k)` : `FFN dense ${l.ffnWidth}`;
    const head = l.headDim === undefined ? '' : `head ${String(l.headDim).padEnd(4)} `;
    lines.push(`  layer ${String(l.index).padStart(2)} ${l.type.padEnd(7)} attends ${String(l.keysAttended).padStart(5)} keys, ${kv.padEnd(24)} ${head}${ffn}`);
  }
  lines.push(`  KV cache: ${kb(e.kvCacheBytes ?? 0)} (${(e.kvSharedLayers ?? []).length} layers reuse another layer's K/V and store none)`);
  return lines.join('\n');
}

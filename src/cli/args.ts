/** Small helpers for parsing command-line values with clear errors. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseIds(text: string, flag = '--ids'): number[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new UsageError(`${flag}: expected a comma-separated list of token ids, got '${text}'`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`${flag}: '${p}' is not a non-negative integer token id`);
    return Number(p);
  });
}

export function parseIntFlag(v: string | undefined, flag: string, def: number, min = 0): number {
  if (v === undefined) return def;
  if (!/^-?\d+$/.test(v.trim()) || Number(v) < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got '${v}'`);
  return Number(v);
}

export function parseNumFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
  return n;
}

export type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

export const str = (v: Values, k: string): string | undefined => v[k] as string | undefined;

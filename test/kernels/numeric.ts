/** Deterministic test data and a tolerance measure, runtime-neutral (shared by the Node and Deno kernel tests). */

/** Deterministic uniform(-1, 1) floats (mulberry32). */
export function rand(n: number, seed: number, scale = 1): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** max |a - b| / (atol + rtol·|b|) over all elements: ≤ 1 passes. */
export function closeness(a: Float32Array, b: Float32Array, atol: number, rtol: number): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}

/**
 * exp and tanh in plain arithmetic, for the element-wise hot loops (GELU over the FFN width,
 * the logit soft-cap over the vocabulary). V8's Math.exp / Math.tanh are calls into C
 * (~15 ns each); these inline into the loop at a few ns and stay far more accurate than the
 * float32 values they produce (relative error < 1e-13, test/kernels/fast_math.test.ts).
 *
 * Range reduction as in fdlibm/musl: x = (n/256)·ln2 + r with |r| ≤ ln2/512, so
 *   e^x = 2^⌊n/256⌋ · 2^((n mod 256)/256) · (1 + expm1(r)),
 * both powers of two read from tables and expm1(r) a degree-4 Taylor polynomial
 * (truncation error r⁴/5! < 3e-14 relative).
 */

/** exp's argument is clamped to ±EXP_LIMIT: e^100 is far outside float32 anyway. */
const EXP_LIMIT = 100;
const INV_STEP = 256 * Math.LOG2E;
const STEP = Math.LN2 / 256;
/** Added before the truncating `| 0` so it floors (n stays positive there); a multiple of 256. */
const N_OFFSET = 256 * 256;
const K_MAX = 160;
/** POW2[k + K_MAX] = 2^k, |k| ≤ K_MAX; FRAC[j] = 2^(j/256). */
const POW2 = new Float64Array(2 * K_MAX + 1);
for (let k = -K_MAX; k <= K_MAX; k++) POW2[k + K_MAX] = Math.pow(2, k);
const FRAC = new Float64Array(256);
for (let j = 0; j < 256; j++) FRAC[j] = Math.pow(2, j / 256);

/** e^r − 1 for |r| ≤ ln2/512. */
function expm1Reduced(r: number): number {
  return r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24))));
}

/** Nearest n to x·256/ln2, for |x| ≤ EXP_LIMIT. */
function reduce(x: number): number {
  return ((x * INV_STEP + (N_OFFSET + 0.5)) | 0) - N_OFFSET;
}

/** 2^(n/256). */
function pow2Step(n: number): number {
  return POW2[(n >> 8) + K_MAX] * FRAC[n & 255];
}

/** e^x, relative error < 1e-13 for |x| ≤ 100 (beyond: the value at ±100); NaN stays NaN. */
/**
 * fastExp's constants for a kernel that reproduces it (assembly/sparse.ts): [256·log2 e, ln2/256,
 * √(2/π) (GELU's), then POW2 (2·K_MAX + 1 values), then FRAC (256)].
 */
export const FAST_EXP_TABLE: Float64Array = (() => {
  const t = new Float64Array(3 + POW2.length + FRAC.length);
  t[0] = INV_STEP;
  t[1] = STEP;
  t[2] = Math.sqrt(2 / Math.PI);
  t.set(POW2, 3);
  t.set(FRAC, 3 + POW2.length);
  return t;
})();

export function fastExp(x: number): number {
  if (x !== x) return x;
  const c = Math.max(-EXP_LIMIT, Math.min(x, EXP_LIMIT));
  const n = reduce(c);
  return pow2Step(n) * (1 + expm1Reduced(c - n * STEP));
}

/**
 * tanh(x) for |x| ≤ 1: Lambert's continued fraction x/(1 + x²/(3 + x²/(5 + … x²/15))) as
 * x·P(x²)/Q(x²). Relative error < 1e-14 there; positive coefficients (no cancellation);
 * exact for ±0.
 */
export function tanhSmall(x: number): number {
  const z = x * x;
  return (x * (2027025 + z * (270270 + z * (6930 + z * 36)))) / (2027025 + z * (945945 + z * (51975 + z * (630 + z))));
}

/**
 * tanh(x): a rational function on [-1, 1] (where soft-capped logits mostly fall), beyond it
 * (e − 1)/(e + 1) with e = e^(2x) = s·(1 + p), |x| clamped to 20 where tanh is 1 in float64.
 * Relative error < 1e-13; ±0 and NaN are returned as is.
 */
export function fastTanh(x: number): number {
  if (Math.abs(x) <= 1) return tanhSmall(x);
  if (!(Math.abs(x) > 0)) return x; // NaN
  const y = 2 * Math.max(-20, Math.min(x, 20));
  const n = reduce(y);
  const s = pow2Step(n), sp = s * expm1Reduced(y - n * STEP);
  return (s - 1 + sp) / (s + 1 + sp);
}

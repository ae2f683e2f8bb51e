/**
 * fastExp / fastTanh (src/kernels/fast_math.ts) replace Math.exp / Math.tanh in hot loops; they
 * must match them to far below float32 resolution everywhere, including the special values.
 */
import { describe, expect, it } from 'vitest';
import { fastExp, fastTanh } from '../../src/kernels/fast_math.js';
import { geluTanh } from '../../src/model/ops.js';

/** Dense grid: every step of 1e-4 over [-25, 25], plus log-spaced magnitudes 1e-300..1e3. */
function grid(): number[] {
  const xs: number[] = [];
  for (let i = -250_000; i <= 250_000; i++) xs.push(i * 1e-4);
  for (let e = -300; e <= 3; e += 0.01) xs.push(10 ** e, -(10 ** e));
  return xs;
}

function relErr(a: number, b: number): number {
  return a === b ? 0 : Math.abs(a - b) / Math.abs(b);
}

describe('fastTanh', () => {
  it('matches Math.tanh to 1e-13 relative over a dense grid and large |x|', () => {
    let worst = 0;
    for (const x of grid()) worst = Math.max(worst, relErr(fastTanh(x), Math.tanh(x)));
    expect(worst).toBeLessThan(1e-13);
  });

  it('is exactly ±1 for large |x|, odd to 1e-13, and keeps 0, −0, tiny x, NaN and ±Infinity', () => {
    for (const x of [20, 25, 100, 1e10, Number.MAX_VALUE]) {
      expect(fastTanh(x)).toBe(1);
      expect(fastTanh(-x)).toBe(-1);
    }
    expect(fastTanh(Infinity)).toBe(1);
    expect(fastTanh(-Infinity)).toBe(-1);
    expect(Number.isNaN(fastTanh(NaN))).toBe(true);
    expect(Object.is(fastTanh(0), 0)).toBe(true);
    expect(Object.is(fastTanh(-0), -0)).toBe(true);
    for (const x of [Number.MIN_VALUE, 1e-300, 1e-20, 1e-9, 1.4e-45]) {
      expect(relErr(fastTanh(x), x)).toBeLessThan(1e-15);
      expect(relErr(fastTanh(-x), -x)).toBeLessThan(1e-15);
    }
    for (let x = 0.001; x < 25; x *= 1.1) expect(relErr(fastTanh(-x), -fastTanh(x))).toBeLessThan(1e-13);
  });

  it('rounds to the same float32 as Math.tanh on the soft-cap path (30·tanh(x/30))', () => {
    let differ = 0, n = 0;
    for (let x = -200; x <= 200; x += 0.0137, n++) {
      const a = Math.fround(fastTanh(x / 30) * 30), b = Math.fround(Math.tanh(x / 30) * 30);
      if (a !== b) {
        differ++;
        expect(relErr(a, b)).toBeLessThanOrEqual(2 ** -23); // at most one f32 ulp, a near-tie
      }
    }
    expect(differ / n).toBeLessThan(1e-3);
  });
});

describe('fastExp', () => {
  it('matches Math.exp to 1e-13 relative over [-100, 100]', () => {
    let worst = 0;
    for (let i = -1_000_000; i <= 1_000_000; i++) {
      const x = i * 1e-4;
      worst = Math.max(worst, relErr(fastExp(x), Math.exp(x)));
    }
    for (const x of grid()) if (Math.abs(x) <= 100) worst = Math.max(worst, relErr(fastExp(x), Math.exp(x)));
    expect(worst).toBeLessThan(1e-13);
  });

  it('is exact at 0, clamps beyond ±100, and keeps NaN', () => {
    expect(fastExp(0)).toBe(1);
    expect(fastExp(-0)).toBe(1);
    expect(relErr(fastExp(1e5), Math.exp(100))).toBeLessThan(1e-13);
    expect(relErr(fastExp(Infinity), Math.exp(100))).toBeLessThan(1e-13);
    expect(relErr(fastExp(-Infinity), Math.exp(-100))).toBeLessThan(1e-13);
    expect(Number.isNaN(fastExp(NaN))).toBe(true);
  });
});

describe('geluTanh', () => {
  it('equals 0.5·x·(1 + tanh(u)), evaluated exactly as x/(1 + e^(−2u)), to 1e-13 relative', () => {
    const u = (x: number) => Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
    const viaTanh = (x: number) => 0.5 * x * (1 + Math.tanh(u(x)));
    const viaExp = (x: number) => x / (1 + Math.exp(-2 * u(x)));
    let worstRel = 0, worstAbsOverBound = 0;
    for (let i = -200_000; i <= 200_000; i++) {
      const x = i * 1e-4; // [-20, 20]
      const a = geluTanh(x), scale = Math.max(1, Math.abs(x));
      // Beyond |2u| = 100 exp is clamped: both values are below 1e-40·|x| there.
      if (Math.abs(2 * u(x)) <= 100) worstRel = Math.max(worstRel, relErr(a, viaExp(x)));
      else worstAbsOverBound = Math.max(worstAbsOverBound, Math.abs(a - viaExp(x)) / scale / 1e-40);
      // The tanh form cancels in 1 + tanh(u) for negative x: equal up to its own rounding.
      worstAbsOverBound = Math.max(worstAbsOverBound, Math.abs(a - viaTanh(x)) / scale / 4e-16);
    }
    expect(worstRel).toBeLessThan(1e-13);
    expect(worstAbsOverBound).toBeLessThanOrEqual(1);
    expect(Object.is(geluTanh(0), 0)).toBe(true);
    expect(geluTanh(1e6)).toBe(1e6);
    expect(Math.abs(geluTanh(-1e6))).toBeLessThan(1e-30);
    expect(Number.isNaN(geluTanh(NaN))).toBe(true);
  });
});

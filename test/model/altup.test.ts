/**
 * AltUp's stream mix has an unrolled path for A = 4 (every Gemma 3n, so the goldens cover it);
 * the general loop must give the same bits.
 */
import { describe, expect, it } from 'vitest';
import { mixStreams, mixStreams4 } from '../../src/model/altup.js';

describe('AltUp stream mix', () => {
  it('mixStreams4 equals the general mixStreams exactly, at a token offset', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 4 - 2;
    const A = 4, T = 3, H = 37, stride = T * H;
    const C = Float32Array.from({ length: A * A }, rand);
    const x = Float32Array.from({ length: A * stride }, rand);
    const general = new Float32Array(A * stride), unrolled = new Float32Array(A * stride);
    for (let t = 0; t < T; t++) {
      mixStreams(C, A, x, general, stride, t * H, H);
      mixStreams4(C, x, unrolled, stride, t * H, H);
    }
    expect(unrolled).toEqual(general);
    // and it is the formula: out[j] = f32(Σ_i C[j,i]·x[i]) + x[j]
    const j = 2, h = 5, t = 1;
    let s = 0;
    for (let i = 0; i < A; i++) s += C[j * A + i] * x[i * stride + t * H + h];
    expect(general[j * stride + t * H + h]).toBe(Math.fround(Math.fround(s) + x[j * stride + t * H + h]));
  });
});

import { describe, expect, it } from 'vitest';
import { Scratch } from '../../src/model/scratch.js';

describe('Scratch', () => {
  it('lends one buffer per name and size, reallocated when the size changes', () => {
    const s = new Scratch();
    const a = s.take('a', 8);
    expect(s.take('a', 8)).toBe(a);
    expect(s.take('b', 8)).not.toBe(a);
    expect(s.take('a', 4).length).toBe(4);
  });

  it("with an allocator the buffers come from it, grow only, and smaller sizes are views of the same memory", () => {
    const live = new Set<Float32Array>();
    const memory = {
      allocF32: (n: number) => { const a = new Float32Array(n); live.add(a); return a; },
      freeF32: (a: Float32Array) => { expect(live.delete(a)).toBe(true); },
    };
    const s = new Scratch(memory);
    const big = s.take('x', 16);
    expect(live.size).toBe(1);
    const small = s.take('x', 4);
    expect(small.length).toBe(4);
    expect(small.buffer).toBe(big.buffer);
    expect(s.take('x', 4)).toBe(small);
    expect(s.take('x', 16).buffer).toBe(big.buffer);
    expect(live.size).toBe(1);
    const bigger = s.take('x', 32);
    expect(bigger.length).toBe(32);
    expect(live.size).toBe(1); // the old buffer was freed
    expect(live.has(bigger)).toBe(true);
  });
});

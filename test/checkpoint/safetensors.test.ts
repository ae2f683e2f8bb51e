/** safetensors round trips and dtype widening against hand-computed values. */
import { describe, expect, it } from 'vitest';
import { MemorySource } from '../../src/io/byte_source.js';
import { f32ToBf16, toFloat32 } from '../../src/checkpoint/dtype.js';
import { SafetensorsFile, writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { GOLDEN, openSafetensors } from '../helpers.js';
import { join } from 'node:path';

describe('safetensors', () => {
  it('reads tensors packed without element alignment (BOOL between F32, as the reference writes)', async () => {
    const bytes = writeSafetensors([
      { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) },
      { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      { name: 'b', dtype: 'F32', shape: [1, 2], data: new Float32Array([3.25, 4]) },
    ]);
    const st = await SafetensorsFile.open(new MemorySource(bytes, 'x.safetensors'));
    expect(st.info('b').offset % 4).not.toBe(0);
    expect(Array.from(await st.readF32('a'))).toEqual([1.5, -2]);
    expect(Array.from(await st.readF32('mask'))).toEqual([1, 0, 1]);
    expect(Array.from(await st.readF32('b'))).toEqual([3.25, 4]);
  });

  it('opens the golden audio file, whose BOOL masks sit between F32 tensors', async () => {
    const st = await openSafetensors(join(GOLDEN, 'audio', 'encoder-tiny', 'golden.safetensors'));
    expect(st.tensors.size).toBeGreaterThan(3);
  });

  it('widens F16 and BF16 exactly and rounds f32 to bf16 to nearest even', () => {
    // f16: 1.0 = 0x3c00, -2.5 = 0xc100, smallest subnormal 2^-24 = 0x0001, inf = 0x7c00
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc100, 0x0001, 0x7c00]).buffer);
    expect(Array.from(toFloat32(f16, 'F16', 4))).toEqual([1, -2.5, 2 ** -24, Infinity]);
    // bf16 0x3fc0 = 1.5, 0xc040 = -3
    const bf = new Uint8Array(new Uint16Array([0x3fc0, 0xc040]).buffer);
    expect(Array.from(toFloat32(bf, 'BF16', 2))).toEqual([1.5, -3]);
    // 1 + 2^-8 is exactly half-way between bf16 1.0 and 1.0078125: ties go to even (1.0).
    const out = new Uint16Array(2);
    f32ToBf16(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8]), out);
    expect(Array.from(out)).toEqual([0x3f80, 0x3f82]);
  });
});

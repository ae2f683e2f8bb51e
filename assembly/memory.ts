// Memory helpers. The heap itself is managed from JS (src/kernels/wasm_kernels.ts: bump
// allocator + free list over memory.grow); this module only reports where static data ends
// and provides the streaming-read kernel the bench uses to measure memory bandwidth.

/** First byte after this module's static data; the JS allocator starts above it. */
export function heap_base(): usize {
  return __heap_base;
}

/** Reads bytes [p, p + n) (n a multiple of 64) and returns a checksum so the loads are kept. */
export function read_stream(p: usize, n: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const end = p + n;
  for (; p < end; p += 64) {
    a = i32x4.add(a, v128.load(p));
    b = i32x4.add(b, v128.load(p, 16));
    c = i32x4.add(c, v128.load(p, 32));
    d = i32x4.add(d, v128.load(p, 48));
  }
  a = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(a, 0) ^ i32x4.extract_lane(a, 1) ^ i32x4.extract_lane(a, 2) ^ i32x4.extract_lane(a, 3);
}

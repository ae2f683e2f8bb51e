// Causal / sliding-window multi-head attention with GQA, streaming ("online") softmax over the
// KV rows in blocks of BLK keys, so no T×S score matrix is ever stored (FlashAttention's
// rescaling trick, arXiv:2205.14135). Semantics match TsKernels.attention exactly.

const BLK: i32 = 64;

/** Scratch floats one thread needs for head dim D. */
export function attention_scratch_floats(D: i32): i32 {
  return D + BLK;
}

// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n4; i += 8) {
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + <usize>i * 4), v128.load(b + <usize>i * 4)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + <usize>i * 4, 16), v128.load(b + <usize>i * 4, 16)));
  }
  for (; i < n4; i += 4) s0 = f32x4.add(s0, f32x4.mul(v128.load(a + <usize>i * 4), v128.load(b + <usize>i * 4)));
  s0 = f32x4.add(s0, s1);
  let s = f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 1) + f32x4.extract_lane(s0, 2) + f32x4.extract_lane(s0, 3);
  for (; i < n; i++) s += load<f32>(a + <usize>i * 4) * load<f32>(b + <usize>i * 4);
  return s;
}

/** acc[0..n) += p · v[0..n) */
// @ts-ignore: decorator
@inline function axpy(acc: usize, p: f32, v: usize, n: i32): void {
  const pv = f32x4.splat(p);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(acc + o, f32x4.add(v128.load(acc + o), f32x4.mul(v128.load(v + o), pv)));
  }
  for (; i < n; i++) store<f32>(acc + <usize>i * 4, load<f32>(acc + <usize>i * 4) + load<f32>(v + <usize>i * 4) * p);
}

/**
 * Work items [i0, i1) of the T·numHeads (query row, head) pairs; item i is t = i / H, h = i % H.
 * scratch holds attention_scratch_floats(D) floats private to the calling thread.
 */
export function attention(q: usize, k: usize, v: usize, out: usize, T: i32, S: i32, H: i32, KVH: i32, D: i32,
  qPos0: i32, kPos0: i32, window: i32, scale: f32, scratch: usize, i0: i32, i1: i32): void {
  const group = H / KVH; // GQA: query head h reads kv head h / group
  const qStride = <usize>H * D, kvStride = <usize>KVH * D;
  const acc = scratch, sc = scratch + <usize>D * 4;
  for (let it = i0; it < i1; it++) {
    const t = it / H, h = it % H;
    const qPos = qPos0 + t;
    const lo = max(0, window > 0 ? qPos - window + 1 - kPos0 : 0);
    const hi = min(S, qPos - kPos0 + 1);
    const qp = q + (<usize>t * qStride + <usize>h * D) * 4;
    const op = out + (<usize>t * qStride + <usize>h * D) * 4;
    const kvo = <usize>(h / group) * D;
    memory.fill(acc, 0, <usize>D * 4);
    let m: f32 = -Infinity, l: f32 = 0;
    for (let s0 = lo; s0 < hi; s0 += BLK) {
      const n = min(BLK, hi - s0);
      let bmax: f32 = -Infinity;
      for (let j = 0; j < n; j++) {
        const s = dot(qp, k + ((<usize>(s0 + j)) * kvStride + kvo) * 4, D) * scale;
        store<f32>(sc + <usize>j * 4, s);
        bmax = max(bmax, s);
      }
      if (bmax > m) {
        const c = m == -Infinity ? <f32>0 : Mathf.exp(m - bmax);
        l *= c;
        // rescale the running sum once per block
        const cv = f32x4.splat(c);
        let i = 0;
        for (; i + 4 <= D; i += 4) v128.store(acc + <usize>i * 4, f32x4.mul(v128.load(acc + <usize>i * 4), cv));
        for (; i < D; i++) store<f32>(acc + <usize>i * 4, load<f32>(acc + <usize>i * 4) * c);
        m = bmax;
      }
      for (let j = 0; j < n; j++) {
        const p = Mathf.exp(load<f32>(sc + <usize>j * 4) - m);
        l += p;
        axpy(acc, p, v + ((<usize>(s0 + j)) * kvStride + kvo) * 4, D);
      }
    }
    const inv: f32 = hi > lo ? <f32>1 / l : 0;
    const iv = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= D; i += 4) v128.store(op + <usize>i * 4, f32x4.mul(v128.load(acc + <usize>i * 4), iv));
    for (; i < D; i++) store<f32>(op + <usize>i * 4, load<f32>(acc + <usize>i * 4) * inv);
  }
}

/**
 * Iterative radix-2 complex FFT (Cooley–Tukey, decimation in time) in float64.
 *
 * The reference feature extractor calls numpy's `rfft`, which (numpy < 2) computes in float64;
 * doing the same keeps our log-mel within ~1e-4 of the stored golden values.
 */
export class Fft {
  /** cos/sin of -2πk/n for k < n/2. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  /** Bit-reversal permutation of 0..n-1. */
  private readonly rev: Uint32Array;

  constructor(readonly n: number) {
    if (!Number.isInteger(n) || n < 2 || (n & (n - 1)) !== 0) throw new Error(`Fft: size ${n} is not a power of two >= 2`);
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let k = 0; k < n / 2; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    const bits = Math.log2(n);
    this.rev = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
  }

  /** In-place forward transform X[k] = Σ x[j]·e^{-2πijk/n} of (re, im), each of length n. */
  transform(re: Float64Array, im: Float64Array): void {
    const { n, rev, cos, sin } = this;
    for (let i = 0; i < n; i++) {
      const j = rev[i];
      if (j > i) {
        let t = re[i]; re[i] = re[j]; re[j] = t;
        t = im[i]; im[i] = im[j]; im[j] = t;
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1, step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = cos[k * step], wi = sin[k * step];
          const a = start + k, b = a + half;
          const tr = re[b] * wr - im[b] * wi;
          const ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr; im[b] = im[a] - ti;
          re[a] += tr; im[a] += ti;
        }
      }
    }
  }
}

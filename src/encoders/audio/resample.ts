/**
 * Band-limited resampling with a Kaiser-windowed sinc (polyphase when the rate ratio is a small
 * fraction, which covers every common rate: 44.1 kHz → 16 kHz is 160/441, i.e. 160 phases).
 *
 * y[n] = Σ_k x[k] · h(n·in/out − k), h(τ) = c · sinc(c·τ) · kaiser(τ / halfWidth),
 * c = min(1, out/in) · ROLLOFF (the anti-aliasing cutoff, as a fraction of the input Nyquist),
 * halfWidth = ZERO_CROSSINGS / c input samples. Samples outside the signal count as zero.
 * Each phase's taps are normalised to unit DC gain.
 */

/** Cutoff as a fraction of the lower Nyquist: the passband ends at 0.94 · 8 kHz = 7.52 kHz for 16 kHz. */
const ROLLOFF = 0.94;
/** Zero crossings of the sinc on each side. */
const ZERO_CROSSINGS = 32;
/** Kaiser β ≈ 9.5: about 95 dB side-lobe attenuation. */
const KAISER_BETA = 9.5;
/** Above this many phases the taps are computed per output sample instead of tabulated. */
const MAX_PHASES = 4096;

/** Zeroth-order modified Bessel function of the first kind (series; converges fast for x ≤ 20). */
function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export class Resampler {
  /** Output step in input samples is M/L (reduced). */
  private readonly L: number;
  private readonly M: number;
  private readonly cutoff: number;
  /** Taps per phase and the offset of tap 0 relative to floor(position). */
  private readonly taps: number;
  private readonly first: number;
  private readonly table: Float32Array | null;
  private readonly i0Beta = besselI0(KAISER_BETA);
  private readonly halfWidth: number;

  constructor(readonly inRate: number, readonly outRate: number) {
    if (!(Number.isSafeInteger(inRate) && inRate > 0 && Number.isSafeInteger(outRate) && outRate > 0)) {
      throw new RangeError(`Resampler: sample rates must be positive integers, got ${inRate} → ${outRate}`);
    }
    const g = gcd(inRate, outRate);
    this.L = outRate / g;
    this.M = inRate / g;
    this.cutoff = Math.min(1, outRate / inRate) * ROLLOFF;
    this.halfWidth = ZERO_CROSSINGS / this.cutoff;
    this.first = -Math.floor(this.halfWidth);
    this.taps = 2 * Math.floor(this.halfWidth) + 2;
    if (this.L <= MAX_PHASES) {
      this.table = new Float32Array(this.L * this.taps);
      for (let p = 0; p < this.L; p++) this.fillTaps(p / this.L, this.table.subarray(p * this.taps, (p + 1) * this.taps));
    } else {
      this.table = null;
    }
  }

  /** Windowed-sinc kernel at offset τ (input samples). */
  private kernel(tau: number): number {
    const r = tau / this.halfWidth;
    if (r <= -1 || r >= 1) return 0;
    const x = this.cutoff * tau;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    return this.cutoff * sinc * (besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / this.i0Beta);
  }

  /** Taps for an output sample at input position floor + frac: tap j weighs x[floor + first + j]. */
  private fillTaps(frac: number, out: Float32Array | Float64Array): void {
    let sum = 0;
    for (let j = 0; j < this.taps; j++) {
      const w = this.kernel(frac - (this.first + j));
      out[j] = w;
      sum += w;
    }
    for (let j = 0; j < this.taps; j++) out[j] /= sum;
  }

  /** Output length for n input samples: ⌈n · out / in⌉. */
  outputLength(n: number): number {
    return Math.ceil((n * this.L) / this.M);
  }

  process(x: Float32Array): Float32Array {
    if (this.L === this.M) return x;
    const n = x.length, N = this.outputLength(n), y = new Float32Array(N);
    const scratch = this.table ? null : new Float64Array(this.taps);
    for (let i = 0; i < N; i++) {
      // Exact rational position i·M/L = base + phase/L.
      const num = i * this.M;
      const base = Math.floor(num / this.L), phase = num - base * this.L;
      let h: Float32Array | Float64Array, ho = 0;
      if (this.table) { h = this.table; ho = phase * this.taps; }
      else { this.fillTaps(phase / this.L, scratch!); h = scratch!; }
      const k0 = base + this.first;
      const jLo = Math.max(0, -k0), jHi = Math.min(this.taps, n - k0);
      let acc = 0;
      for (let j = jLo; j < jHi; j++) acc += h[ho + j] * x[k0 + j];
      y[i] = acc;
    }
    return y;
  }
}

/** Resamples mono audio; returns the input itself when the rates are equal (bit-exact). */
export function resample(x: Float32Array, inRate: number, outRate = 16000): Float32Array {
  return inRate === outRate ? x : new Resampler(inRate, outRate).process(x);
}

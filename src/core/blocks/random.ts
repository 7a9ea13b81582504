/**
 * A small seeded pseudo-random generator (mulberry32) with the distributions benchmarks, tests
 * and synthetic traces need. Deterministic across platforms, so every figure can be reproduced
 * from its seed.
 *
 * @example
 * ```ts
 * const rng = new Random(42);
 * rng.next();        // 0.6011037519201636 (uniform in [0, 1))
 * rng.lognormal(1);  // exp(N(0, 1))
 * ```
 */
export class Random {
  private state: number;
  private spare = Number.NaN;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal N(0, 1) by Box-Muller (the second value is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = Number.NaN;
      return s;
    }
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** exp(N(0, sigma^2)): the per-expert popularity skew seen in real MoE traffic. */
  lognormal(sigma: number): number {
    return Math.exp(sigma * this.normal());
  }

  /** Poisson(mean), by inversion for small means and a normal approximation above 64. */
  poisson(mean: number): number {
    if (mean <= 0) return 0;
    if (mean > 64) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }
}

/**
 * A seeded `[layers][experts]` load matrix, lognormal(sigma) per expert scaled to `scale` mean.
 *
 * @example
 * ```ts
 * const m = lognormalLoads(58, 256, 1.0, 7); // { layers: 58, experts: 256, data: Float64Array }
 * ```
 */
export function lognormalLoads(
  layers: number,
  experts: number,
  sigma: number,
  seed: number,
  scale = 1000,
): { layers: number; experts: number; data: Float64Array } {
  const rng = new Random(seed);
  const data = new Float64Array(layers * experts);
  for (let i = 0; i < data.length; i++) data[i] = scale * rng.lognormal(sigma);
  return { layers, experts, data };
}

/**
 * A seeded Zipf-like load matrix: in every layer a random permutation of experts gets loads
 * proportional to `1 / rank^exponent`.
 *
 * @example
 * ```ts
 * zipfLoads(2, 8, 1.0, 3).data.length; // 16
 * ```
 */
export function zipfLoads(
  layers: number,
  experts: number,
  exponent: number,
  seed: number,
  scale = 1000,
): { layers: number; experts: number; data: Float64Array } {
  const rng = new Random(seed);
  const data = new Float64Array(layers * experts);
  const perm = new Int32Array(experts);
  for (let l = 0; l < layers; l++) {
    for (let e = 0; e < experts; e++) perm[e] = e;
    for (let e = experts - 1; e > 0; e--) {
      const j = rng.int(e + 1);
      const t = perm[e];
      perm[e] = perm[j];
      perm[j] = t;
    }
    for (let r = 0; r < experts; r++)
      data[l * experts + perm[r]] = (scale * experts) / (r + 1) ** exponent / experts;
  }
  return { layers, experts, data };
}

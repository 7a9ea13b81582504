import { Random } from "../blocks/random.js";
import { EplbInputError, requireInteger } from "../model/errors.js";
import type { LoadTrace } from "./estimators.js";
import type { TraceSource } from "./simulate.js";

/** Parameters of a synthetic trace; every figure made from one is reproducible from these. */
export interface SynthOptions {
  steps: number;
  layers: number;
  experts: number;
  /** Seed of the generator; default 1. */
  seed?: number;
  /** Skew: expert popularity is lognormal(0, sigma^2) in every layer; default 1.0. */
  sigma?: number;
  /**
   * Drift: per-step standard deviation of the change of an expert's log-popularity (a
   * mean-reverting walk that keeps the skew at `sigma`); default 0.01, i.e. about 10% over 100
   * steps. 0 keeps popularity fixed.
   */
  drift?: number;
  /** Token-to-expert assignments per layer per step (tokens * top-k); default 32768. */
  tokens?: number;
  /** Chance per layer per step that a burst starts on one random expert; default 0.002. */
  burstRate?: number;
  /** Popularity multiplier of an expert during its burst; default 4. */
  burstScale?: number;
  /** Length of a burst in steps; default 50. */
  burstSteps?: number;
}

/** A generated trace, read step by step; `synthetic` marks it so reports can say so. */
export interface SynthTrace extends TraceSource {
  readonly synthetic: true;
  readonly options: Readonly<Required<SynthOptions>>;
  /** One line naming the trace as synthetic and its parameters. */
  readonly description: string;
}

/** Popularity is re-drawn at anchors this many steps apart and interpolated in between. */
export const DRIFT_SEGMENT = 50;

/**
 * The popularity walk of the synthetic generators: an Ornstein-Uhlenbeck walk of the
 * log-popularity with stationary std `sigma` whose short-term increments have std `drift` per
 * sqrt(step) (tau = 2 sigma^2 / drift^2 steps of mean reversion), sampled every `steps` steps:
 * `z' = rho z + innovation N(0, 1)`.
 *
 * @param sigma stationary standard deviation
 * @param drift per-step standard deviation of the change
 * @param steps steps between two samples
 * @returns `rho` and `innovation` (1 and 0 when either parameter is 0: no drift)
 * @example
 * ```ts
 * driftWalk(1, 0, 50); // { rho: 1, innovation: 0 }
 * ```
 */
export function driftWalk(
  sigma: number,
  drift: number,
  steps: number,
): { rho: number; innovation: number } {
  if (!(sigma > 0 && drift > 0)) return { rho: 1, innovation: 0 };
  const tau = (2 * sigma * sigma) / (drift * drift);
  const rho = Math.exp(-steps / tau);
  return { rho, innovation: sigma * Math.sqrt(1 - rho * rho) };
}

function finiteAtLeast(name: string, value: number, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new EplbInputError(name, value, `must be a finite number >= ${min}`);
  }
  return value;
}

/**
 * Checks synthetic-trace options and fills the defaults.
 *
 * @example
 * ```ts
 * resolveSynthOptions({ steps: 10, layers: 2, experts: 8 }).tokens; // 32768
 * resolveSynthOptions({ steps: 10, layers: 2, experts: 8, sigma: -1 });
 * // throws: sigma (-1) must be a finite number >= 0
 * ```
 */
export function resolveSynthOptions(options: SynthOptions): Required<SynthOptions> {
  requireInteger("steps", options.steps, 1);
  requireInteger("layers", options.layers, 1);
  requireInteger("experts", options.experts, 1);
  const seed = requireInteger("seed", options.seed ?? 1, 0);
  const burstRate = finiteAtLeast("burstRate", options.burstRate ?? 0.002, 0);
  if (burstRate > 1) throw new EplbInputError("burstRate", burstRate, "must be <= 1");
  return {
    steps: options.steps,
    layers: options.layers,
    experts: options.experts,
    seed,
    sigma: finiteAtLeast("sigma", options.sigma ?? 1, 0),
    drift: finiteAtLeast("drift", options.drift ?? 0.01, 0),
    tokens: requireInteger("tokens", options.tokens ?? 32768, 0),
    burstRate,
    burstScale: finiteAtLeast("burstScale", options.burstScale ?? 4, 0),
    burstSteps: requireInteger("burstSteps", options.burstSteps ?? 50, 1),
  };
}

/**
 * Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
 */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269];
  const a4 = -30.66479806614716;
  const a5 = 2.506628274631;
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972];
  const b4 = -13.28068155288572;
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734];
  const c4 = 4.374664141464968;
  const c5 = 2.938163982698783;
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c4) * q + c5) /
      ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    );
  }
  if (p > 1 - 0.02425) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a4) * r + a5) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b4) * r + 1)
  );
}

const NORMAL_BINS = 16384;
let normalTable: Float64Array | null = null;

/**
 * A standard normal sample by table inversion of one uniform (linear interpolation between
 * 16,385 quantiles, tails cut at about 4 sigma): several times cheaper than Box-Muller, which
 * matters at 150 million samples per trace, and accurate well beyond what Poisson counts need.
 */
function fastNormal(rng: Random): number {
  if (normalTable === null) {
    normalTable = new Float64Array(NORMAL_BINS + 1);
    for (let i = 0; i <= NORMAL_BINS; i++) {
      normalTable[i] = normalQuantile(Math.min(1 - 1e-5, Math.max(1e-5, i / NORMAL_BINS)));
    }
  }
  const x = rng.next() * NORMAL_BINS;
  const i = Math.floor(x);
  return normalTable[i] + (normalTable[i + 1] - normalTable[i]) * (x - i);
}

/** Poisson(mean): inversion with one uniform below 12, a rounded normal above. */
function poisson(rng: Random, mean: number): number {
  if (mean <= 0) return 0;
  if (mean >= 12) {
    // floor(x + 0.5) rather than Math.round, which V8 compiles to a much slower path.
    const k = Math.floor(mean + Math.sqrt(mean) * fastNormal(rng) + 0.5);
    return Math.max(k, 0);
  }
  const u = rng.next();
  let p = Math.exp(-mean);
  let cdf = p;
  let k = 0;
  while (u > cdf && k < 200) {
    k++;
    p *= mean / k;
    cdf += p;
  }
  return k;
}

class SynthGenerator implements SynthTrace {
  readonly synthetic = true as const;
  readonly options: Required<SynthOptions>;
  readonly description: string;
  readonly steps: number;
  readonly layers: number;
  readonly experts: number;
  private rng!: Random;
  private next = 0;
  /** Log-popularity at the current segment's start and end anchors. */
  private readonly zFrom: Float64Array;
  private readonly zTo: Float64Array;
  private readonly popFrom: Float64Array;
  private readonly popTo: Float64Array;
  private readonly weight: Float64Array;
  /** Active bursts as (layer * experts + expert, last step) pairs. */
  private bursts: number[] = [];
  private readonly rho: number;
  private readonly innovation: number;

  constructor(options: SynthOptions) {
    const o = resolveSynthOptions(options);
    this.options = o;
    this.steps = o.steps;
    this.layers = o.layers;
    this.experts = o.experts;
    this.description =
      `SYNTHETIC trace (eplb synth): ${o.steps} steps x ${o.layers} layers x ${o.experts} experts, ` +
      `seed ${o.seed}, lognormal sigma ${o.sigma}, drift ${o.drift}/step, ${o.tokens} tokens/layer/step, ` +
      `bursts ${o.burstRate}/layer/step x${o.burstScale} for ${o.burstSteps} steps`;
    const n = o.layers * o.experts;
    this.zFrom = new Float64Array(n);
    this.zTo = new Float64Array(n);
    this.popFrom = new Float64Array(n);
    this.popTo = new Float64Array(n);
    this.weight = new Float64Array(o.experts);
    ({ rho: this.rho, innovation: this.innovation } = driftWalk(o.sigma, o.drift, DRIFT_SEGMENT));
    this.reset();
  }

  private reset(): void {
    const o = this.options;
    this.rng = new Random(o.seed);
    this.next = 0;
    this.bursts = [];
    for (let i = 0; i < this.zTo.length; i++) this.zTo[i] = o.sigma * this.rng.normal();
    this.advanceAnchor();
  }

  /** Moves to the next drift segment: the end anchor becomes the start, a new end is drawn. */
  private advanceAnchor(): void {
    const { zFrom, zTo, popFrom, popTo, rho, innovation } = this;
    for (let i = 0; i < zTo.length; i++) {
      zFrom[i] = zTo[i];
      popFrom[i] = Math.exp(zFrom[i]);
      if (innovation > 0) zTo[i] = rho * zFrom[i] + innovation * this.rng.normal();
      popTo[i] = Math.exp(zTo[i]);
    }
  }

  readStep(step: number, out: Float64Array, offset: number): void {
    if (!Number.isInteger(step) || step < 0 || step >= this.steps) {
      throw new EplbInputError("step", step, `must be an integer in 0..${this.steps - 1}`);
    }
    // Steps come from one sequential stream; a jump back restarts it, a jump ahead skips.
    if (step < this.next) this.reset();
    const E = this.experts;
    const skip = new Float64Array(step > this.next ? this.layers * E : 0);
    while (this.next < step) this.generate(skip, 0);
    this.generate(out, offset);
  }

  private generate(out: Float64Array, offset: number): void {
    const o = this.options;
    const t = this.next;
    const E = this.experts;
    const rng = this.rng;
    if (t > 0 && t % DRIFT_SEGMENT === 0) this.advanceAnchor();
    const f = (t % DRIFT_SEGMENT) / DRIFT_SEGMENT;
    for (let l = 0; l < this.layers; l++) {
      if (o.burstRate > 0 && rng.next() < o.burstRate) {
        this.bursts.push(l * E + rng.int(E), t + o.burstSteps - 1);
      }
    }
    const bursts = this.bursts;
    const w = this.weight;
    for (let l = 0; l < this.layers; l++) {
      const base = l * E;
      let total = 0;
      for (let e = 0; e < E; e++) {
        const a = this.popFrom[base + e];
        const v = a + (this.popTo[base + e] - a) * f;
        w[e] = v;
        total += v;
      }
      for (let b = 0; b < bursts.length; b += 2) {
        const cell = bursts[b];
        if (cell >= base && cell < base + E) {
          total += w[cell - base] * (o.burstScale - 1);
          w[cell - base] *= o.burstScale;
        }
      }
      const scale = total > 0 ? o.tokens / total : 0;
      for (let e = 0; e < E; e++) out[offset + base + e] = poisson(rng, w[e] * scale);
    }
    if (bursts.length) {
      let kept = 0;
      for (let b = 0; b < bursts.length; b += 2) {
        if (bursts[b + 1] > t) {
          bursts[kept++] = bursts[b];
          bursts[kept++] = bursts[b + 1];
        }
      }
      bursts.length = kept;
    }
    this.next++;
  }
}

/**
 * A seeded synthetic trace generated step by step (nothing is held but the current popularity):
 * per layer, lognormal(sigma) expert popularity that drifts slowly (a mean-reverting walk of the
 * log-popularity), occasional bursts (one expert `burstScale` times as popular for `burstSteps`
 * steps), and per step `tokens` assignments sampled per expert (Poisson counts, the usual
 * approximation of the multinomial). Clearly synthetic: `description` says so.
 *
 * @example
 * ```ts
 * const trace = synthTrace({ steps: 1000, layers: 58, experts: 256, seed: 7 });
 * const step = new Float64Array(58 * 256);
 * trace.readStep(0, step, 0); // integer counts summing to about 32768 per layer
 * ```
 */
export function synthTrace(options: SynthOptions): SynthTrace {
  return new SynthGenerator(options);
}

/**
 * A synthetic trace materialised as integer counts, `[steps][layers][experts]` in an Int32Array
 * (see {@link synthTrace}; 4 bytes per count, so 10,000 x 58 x 256 takes 594 MB).
 *
 * @example
 * ```ts
 * const t = synthesizeTrace({ steps: 100, layers: 2, experts: 8, seed: 3 });
 * // { steps: 100, layers: 2, experts: 8, data: Int32Array(1600), synthetic: true, description: "SYNTHETIC trace ..." }
 * ```
 */
export function synthesizeTrace(
  options: SynthOptions,
): LoadTrace & { data: Int32Array; synthetic: true; description: string } {
  const gen = synthTrace(options);
  const n = gen.layers * gen.experts;
  const data = new Int32Array(gen.steps * n);
  const step = new Float64Array(n);
  for (let t = 0; t < gen.steps; t++) {
    gen.readStep(t, step, 0);
    data.set(step, t * n);
  }
  return {
    steps: gen.steps,
    layers: gen.layers,
    experts: gen.experts,
    data,
    synthetic: true,
    description: gen.description,
  };
}

import { EplbInputError, requireInteger } from "../model/errors.js";

/**
 * Numeric typed arrays a trace may be stored in (integer counts or float loads). BigInt arrays
 * are excluded: readers convert int64 to numbers, which is exact for any realistic count.
 */
export type TraceData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/**
 * A load trace `[steps][layers][experts]`, row-major: the load of expert `e` in layer `l` at step
 * `t` is `data[(t * layers + l) * experts + e]`.
 */
export interface LoadTrace {
  readonly steps: number;
  readonly layers: number;
  readonly experts: number;
  readonly data: TraceData;
}

/** How loads are estimated from past steps. */
export type EstimatorKind = "mean" | "ema" | "max" | "meanstd";

/** Every estimator, in the order `--help` lists them. */
export const ESTIMATOR_KINDS: readonly EstimatorKind[] = ["mean", "ema", "max", "meanstd"];

/**
 * The estimator `simulate` and `eplb simulate` use unless told otherwise. Popularity drifts, so
 * recent steps say more about the next interval than old ones: on drifting synthetic traces an
 * EMA with half-life `window / 4` realises 0.4-1.8% more balancedness than the window mean the
 * engines record (bench `simulate`), and no less on stationary ones.
 */
export const DEFAULT_ESTIMATOR: EstimatorKind = "ema";

/**
 * Default `ema` half-life as a fraction of the window: 94% of the weight falls on the last
 * `window` steps, and a step's weight halves every quarter window.
 */
export const DEFAULT_HALF_LIFE_FRACTION = 0.25;

/** One-line description of each estimator, for `--help` and docs. */
export const ESTIMATOR_DESCRIPTIONS: Readonly<Record<EstimatorKind, string>> = {
  mean: "mean load per step over the window",
  ema: "exponential moving average (half-life default window / 4), bias-corrected",
  max: "each expert's largest load per step in the window",
  meanstd: "mean + k std over time slices of the window (default k 1, 4 slices)",
};

/** Which estimator to run and its parameters. */
export interface EstimatorSpec {
  kind: EstimatorKind;
  /** Steps of history the estimate looks at (`ema`: only sets the default half-life). */
  window: number;
  /** `ema`: steps after which a step's weight halves; default `window / 4`. */
  halfLife?: number;
  /** `meanstd`: how many standard deviations to add; default 1. */
  k?: number;
  /** `meanstd`: number of time slices the window is cut into; default 4. */
  slices?: number;
}

/**
 * An incremental estimator over a trace fed one step at a time: `push` costs O(layers * experts),
 * `estimate` at most O(window * layers * experts) (only for `max` and `meanstd`). Estimates are
 * loads per step, so plans made from them are scale-free.
 */
export interface LoadEstimator {
  readonly spec: Readonly<Required<EstimatorSpec>>;
  readonly layers: number;
  readonly experts: number;
  /** Steps pushed so far. */
  readonly seen: number;
  /** Adds one step: `layers * experts` values of `source` starting at `offset`. */
  push(source: ArrayLike<number>, offset?: number): void;
  /**
   * The estimate from the steps pushed so far (at most the last `window`), `[layers][experts]`
   * row-major, written into `out` (allocated when absent). All zeros before the first push.
   */
  estimate(out?: Float64Array): Float64Array;
}

/**
 * Checks an estimator spec and fills its defaults.
 *
 * @example
 * ```ts
 * resolveEstimatorSpec({ kind: "ema", window: 100 });
 * // { kind: "ema", window: 100, halfLife: 25, k: 1, slices: 4 }
 * resolveEstimatorSpec({ kind: "median", window: 100 });
 * // throws: estimator ("median") must be one of: mean, ema, max, meanstd
 * ```
 */
export function resolveEstimatorSpec(spec: EstimatorSpec): Required<EstimatorSpec> {
  if (!ESTIMATOR_KINDS.includes(spec.kind)) {
    throw new EplbInputError(
      "estimator",
      spec.kind,
      `must be one of: ${ESTIMATOR_KINDS.join(", ")}`,
    );
  }
  requireInteger("window", spec.window, 1);
  const halfLife = spec.halfLife ?? spec.window * DEFAULT_HALF_LIFE_FRACTION;
  if (typeof halfLife !== "number" || !Number.isFinite(halfLife) || halfLife <= 0) {
    throw new EplbInputError("halfLife", halfLife, "must be a number > 0");
  }
  const k = spec.k ?? 1;
  if (typeof k !== "number" || !Number.isFinite(k)) {
    throw new EplbInputError("k", k, "must be a finite number");
  }
  const slices = spec.slices ?? 4;
  requireInteger("slices", slices, 1);
  return { kind: spec.kind, window: spec.window, halfLife, k, slices };
}

/**
 * Creates an incremental {@link LoadEstimator}. Windowed kinds keep a ring of the last `window`
 * steps (`window * layers * experts` float64s); `ema` keeps only its running state.
 *
 * @example
 * ```ts
 * const est = createEstimator(1, 2, { kind: "mean", window: 2 });
 * est.push([4, 0]);
 * est.push([2, 2]);
 * est.push([0, 4]);
 * est.estimate(); // Float64Array [1, 3]: the mean of the last 2 steps
 * ```
 */
export function createEstimator(
  layers: number,
  experts: number,
  spec: EstimatorSpec,
): LoadEstimator {
  requireInteger("layers", layers, 1);
  requireInteger("experts", experts, 1);
  const resolved = resolveEstimatorSpec(spec);
  return resolved.kind === "ema"
    ? new EmaEstimator(layers, experts, resolved)
    : new WindowEstimator(layers, experts, resolved);
}

class EmaEstimator implements LoadEstimator {
  readonly spec: Required<EstimatorSpec>;
  readonly layers: number;
  readonly experts: number;
  seen = 0;
  private readonly state: Float64Array;
  private readonly decay: number;
  /** `decay ^ seen`, for the bias correction of the first steps. */
  private decayPower = 1;

  constructor(layers: number, experts: number, spec: Required<EstimatorSpec>) {
    this.spec = spec;
    this.layers = layers;
    this.experts = experts;
    this.state = new Float64Array(layers * experts);
    this.decay = 2 ** (-1 / spec.halfLife);
  }

  push(source: ArrayLike<number>, offset = 0): void {
    const s = this.state;
    const a = 1 - this.decay;
    const d = this.decay;
    for (let i = 0; i < s.length; i++) s[i] = d * s[i] + a * source[offset + i];
    this.decayPower *= d;
    this.seen++;
  }

  estimate(out = new Float64Array(this.state.length)): Float64Array {
    // Dividing by 1 - decay^n makes the weights of the first n steps sum to 1, so early
    // estimates are not biased towards zero.
    const norm = this.seen === 0 ? 0 : 1 / (1 - this.decayPower);
    for (let i = 0; i < out.length; i++) out[i] = this.state[i] * norm;
    return out;
  }
}

/** The running window sum is recomputed from scratch after this many windows of pushes. */
const RESYNC_WINDOWS = 16;

class WindowEstimator implements LoadEstimator {
  readonly spec: Required<EstimatorSpec>;
  readonly layers: number;
  readonly experts: number;
  seen = 0;
  /** The last `window` steps; step `t` sits at row `t % window`. */
  private readonly ring: Float64Array;
  /** Sum over the steps in the ring (kept for `mean`, exact for integer counts). */
  private readonly sum: Float64Array;
  private readonly scratch: Float64Array;
  private readonly scratch2: Float64Array;

  constructor(layers: number, experts: number, spec: Required<EstimatorSpec>) {
    this.spec = spec;
    this.layers = layers;
    this.experts = experts;
    const n = layers * experts;
    this.ring = new Float64Array(spec.window * n);
    this.sum = new Float64Array(spec.kind === "mean" ? n : 0);
    this.scratch = new Float64Array(spec.kind === "meanstd" ? n : 0);
    this.scratch2 = new Float64Array(spec.kind === "meanstd" ? n : 0);
  }

  push(source: ArrayLike<number>, offset = 0): void {
    const n = this.layers * this.experts;
    const W = this.spec.window;
    const base = (this.seen % W) * n;
    const ring = this.ring;
    if (this.spec.kind === "mean") {
      const sum = this.sum;
      const full = this.seen >= W;
      for (let i = 0; i < n; i++) {
        const v = source[offset + i];
        sum[i] += full ? v - ring[base + i] : v;
        ring[base + i] = v;
      }
      this.seen++;
      if (this.seen % (RESYNC_WINDOWS * W) === 0) this.resync();
      return;
    }
    for (let i = 0; i < n; i++) ring[base + i] = source[offset + i];
    this.seen++;
  }

  /**
   * Recomputes the running sum from the ring. Float loads would let rounding errors of
   * add/subtract pile up (integer counts are exact); doing this every {@link RESYNC_WINDOWS}
   * windows bounds them at a small amortised cost per step.
   * A method of its own so that `push`, compiled while this rare path had never run, is not
   * deoptimised each time it does.
   */
  private resync(): void {
    const n = this.layers * this.experts;
    const { sum, ring } = this;
    sum.fill(0);
    for (let r = 0; r < this.spec.window; r++) {
      const rb = r * n;
      for (let i = 0; i < n; i++) sum[i] += ring[rb + i];
    }
  }

  estimate(out = new Float64Array(this.layers * this.experts)): Float64Array {
    const n = this.layers * this.experts;
    const W = this.spec.window;
    const have = Math.min(this.seen, W);
    if (have === 0) return out.fill(0, 0, n);
    const ring = this.ring;
    switch (this.spec.kind) {
      case "mean": {
        const inv = 1 / have;
        for (let i = 0; i < n; i++) out[i] = this.sum[i] * inv;
        return out;
      }
      case "max": {
        out.set(ring.subarray(0, n));
        for (let r = 1; r < have; r++) {
          const rb = r * n;
          for (let i = 0; i < n; i++) if (ring[rb + i] > out[i]) out[i] = ring[rb + i];
        }
        return out;
      }
      default:
        return this.meanStd(out, have);
    }
  }

  /** Mean + k * std over the per-slice means of the last `have` steps, oldest slice first. */
  private meanStd(out: Float64Array, have: number): Float64Array {
    const n = this.layers * this.experts;
    const W = this.spec.window;
    const slices = Math.min(this.spec.slices, have);
    const first = this.seen - have;
    const sliceMean = this.scratch;
    const acc = this.scratch2;
    out.fill(0, 0, n);
    acc.fill(0);
    for (let j = 0; j < slices; j++) {
      // Slice j covers steps [first + floor(j * have / slices), first + floor((j+1) * have / slices)).
      const from = first + Math.floor((j * have) / slices);
      const to = first + Math.floor(((j + 1) * have) / slices);
      sliceMean.fill(0);
      for (let t = from; t < to; t++) {
        const rb = (t % W) * n;
        for (let i = 0; i < n; i++) sliceMean[i] += this.ring[rb + i];
      }
      const inv = 1 / (to - from);
      for (let i = 0; i < n; i++) {
        const m = sliceMean[i] * inv;
        out[i] += m;
        acc[i] += m * m;
      }
    }
    const k = this.spec.k;
    for (let i = 0; i < n; i++) {
      const mean = out[i] / slices;
      const variance = Math.max(0, acc[i] / slices - mean * mean);
      out[i] = Math.max(0, mean + k * Math.sqrt(variance));
    }
    return out;
  }
}

/**
 * The estimate a {@link LoadEstimator} would give after steps `0 .. end-1` of `trace`, computed
 * directly (no incremental state). For one-off estimates and as a cross-check of the incremental
 * estimators.
 *
 * @example
 * ```ts
 * const trace = { steps: 3, layers: 1, experts: 2, data: new Float64Array([4, 0, 2, 2, 0, 4]) };
 * estimateLoads(trace, 3, { kind: "max", window: 2 }); // Float64Array [2, 4]
 * ```
 */
export function estimateLoads(trace: LoadTrace, end: number, spec: EstimatorSpec): Float64Array {
  const resolved = resolveEstimatorSpec(spec);
  requireInteger("end", end, 0);
  if (end > trace.steps) {
    throw new EplbInputError("end", end, `must be <= the trace's steps (${trace.steps})`);
  }
  const n = trace.layers * trace.experts;
  const out = new Float64Array(n);
  const { data } = trace;
  if (end === 0) return out;
  if (resolved.kind === "ema") {
    const d = 2 ** (-1 / resolved.halfLife);
    let norm = 0;
    for (let t = 0; t < end; t++) {
      const w = d ** (end - 1 - t);
      norm += w;
      for (let i = 0; i < n; i++) out[i] += w * data[t * n + i];
    }
    for (let i = 0; i < n; i++) out[i] /= norm;
    return out;
  }
  const have = Math.min(end, resolved.window);
  const first = end - have;
  if (resolved.kind === "mean" || resolved.kind === "max") {
    if (resolved.kind === "max") out.fill(Number.NEGATIVE_INFINITY);
    for (let t = first; t < end; t++) {
      for (let i = 0; i < n; i++) {
        const v = data[t * n + i];
        if (resolved.kind === "max") out[i] = Math.max(out[i], v);
        else out[i] += v / have;
      }
    }
    return out;
  }
  const slices = Math.min(resolved.slices, have);
  const means: Float64Array[] = [];
  for (let j = 0; j < slices; j++) {
    const from = first + Math.floor((j * have) / slices);
    const to = first + Math.floor(((j + 1) * have) / slices);
    const m = new Float64Array(n);
    for (let t = from; t < to; t++) for (let i = 0; i < n; i++) m[i] += data[t * n + i];
    for (let i = 0; i < n; i++) m[i] /= to - from;
    means.push(m);
  }
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (const m of means) mean += m[i] / slices;
    let variance = 0;
    for (const m of means) variance += (m[i] - mean) ** 2 / slices;
    out[i] = Math.max(0, mean + resolved.k * Math.sqrt(variance));
  }
  return out;
}

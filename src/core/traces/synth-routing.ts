import { Random } from "../blocks/random.js";
import { EplbInputError, requireInteger } from "../model/errors.js";
import { makeRouting, type Routing } from "../routing/routing.js";
import { driftWalk } from "./synth.js";

/** Parameters of synthetic routing; every figure made from it is reproducible from these. */
export interface SynthRoutingOptions {
  /** Tokens per step. */
  tokens: number;
  layers: number;
  experts: number;
  /** Experts each token chooses per layer (top-k), at most `experts`. */
  k: number;
  /** Steps (time); default 1. Popularity drifts from one step to the next. */
  steps?: number;
  /** Seed of the generator; default 1. */
  seed?: number;
  /**
   * Co-activated clusters per layer (each layer's experts are split at random into this many
   * near-equal sets); default 8. A token picks one cluster per layer and draws most of its
   * top-k from it.
   */
  clusters?: number;
  /** Chance that each of a token's choices comes from its cluster (else from all experts); default 0.8. */
  affinity?: number;
  /** Skew: expert popularity is lognormal(0, sigma^2) in every layer; default 1.0. */
  sigma?: number;
  /**
   * Per-step standard deviation of the change of an expert's log-popularity (a mean-reverting
   * walk that keeps the skew at `sigma`, as `synthTrace`'s); default 0.01. 0 keeps it fixed.
   */
  drift?: number;
}

/** Synthetic routing read step by step; `synthetic` marks it so reports can say so. */
export interface SynthRoutingSource {
  readonly synthetic: true;
  readonly options: Readonly<Required<SynthRoutingOptions>>;
  /** One line naming the routing as synthetic and its parameters. */
  readonly description: string;
  /**
   * The routing of step `step` (`tokens` tokens, rank unknown). Steps come from one sequential
   * stream: reading backwards restarts it, so read in order.
   *
   * @throws {EplbInputError} when `step` is not in `0 .. steps - 1`
   */
  readStep(step: number): Routing;
}

function finiteIn(name: string, value: number, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new EplbInputError(name, value, `must be a finite number in [${min}, ${max}]`);
  }
  return value;
}

/**
 * Checks synthetic-routing options and fills the defaults.
 *
 * @param options the options
 * @returns every option, defaults filled
 * @throws {EplbInputError} naming the option, the value and the rule (`k` above `experts`,
 *   `clusters` above `experts`, `affinity` outside [0, 1], ...)
 * @example
 * ```ts
 * resolveSynthRoutingOptions({ tokens: 10, layers: 2, experts: 64, k: 6 }).clusters; // 8
 * resolveSynthRoutingOptions({ tokens: 10, layers: 2, experts: 4, k: 6 });
 * // throws: k (6) must be an integer in 1 .. 4 (the experts)
 * ```
 */
export function resolveSynthRoutingOptions(
  options: SynthRoutingOptions,
): Required<SynthRoutingOptions> {
  const tokens = requireInteger("tokens", options.tokens, 1);
  const layers = requireInteger("layers", options.layers, 1);
  const experts = requireInteger("experts", options.experts, 1);
  const k = requireInteger("k", options.k, 1);
  if (k > experts) {
    throw new EplbInputError("k", k, `must be an integer in 1 .. ${experts} (the experts)`);
  }
  const clusters = requireInteger("clusters", options.clusters ?? Math.min(8, experts), 1);
  if (clusters > experts) {
    throw new EplbInputError("clusters", clusters, `must be at most the experts (${experts})`);
  }
  return {
    tokens,
    layers,
    experts,
    k,
    steps: requireInteger("steps", options.steps ?? 1, 1),
    seed: requireInteger("seed", options.seed ?? 1, 0),
    clusters,
    affinity: finiteIn("affinity", options.affinity ?? 0.8, 0, 1),
    sigma: finiteIn("sigma", options.sigma ?? 1, 0, 10),
    drift: finiteIn("drift", options.drift ?? 0.01, 0, 10),
  };
}

/** Index of the first cumulative weight above `x` in `cum[from .. to)` (binary search). */
function pick(cum: Float64Array, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

class RoutingGenerator implements SynthRoutingSource {
  readonly synthetic = true as const;
  readonly options: Required<SynthRoutingOptions>;
  readonly description: string;
  private rng!: Random;
  private next = 0;
  /** Log-popularity per (layer, expert). */
  private readonly z: Float64Array;
  /** Per layer: experts ordered by cluster (`members[l * E + i]`), cluster c at `start[c] ..`. */
  private readonly members: Int32Array;
  private readonly start: Int32Array;
  private readonly rho: number;
  private readonly innovation: number;

  constructor(options: SynthRoutingOptions) {
    const o = resolveSynthRoutingOptions(options);
    this.options = o;
    this.description =
      `SYNTHETIC routing (eplb synth --routing): ${o.steps > 1 ? `${o.steps} steps x ` : ""}` +
      `${o.tokens} tokens x ${o.layers} layers, top-${o.k} of ${o.experts} experts, seed ${o.seed}, ` +
      `${o.clusters} co-activated clusters per layer (affinity ${o.affinity}), lognormal sigma ${o.sigma}, ` +
      `drift ${o.drift}/step`;
    const { layers: L, experts: E, clusters: C } = o;
    this.z = new Float64Array(L * E);
    this.members = new Int32Array(L * E);
    this.start = new Int32Array(C + 1);
    for (let c = 0; c <= C; c++) this.start[c] = Math.floor((c * E) / C);
    ({ rho: this.rho, innovation: this.innovation } = driftWalk(o.sigma, o.drift, 1));
    this.reset();
  }

  private reset(): void {
    const o = this.options;
    const E = o.experts;
    this.rng = new Random(o.seed);
    this.next = 0;
    for (let l = 0; l < o.layers; l++) {
      const m = this.members.subarray(l * E, (l + 1) * E);
      for (let e = 0; e < E; e++) m[e] = e;
      for (let e = E - 1; e > 0; e--) {
        const j = this.rng.int(e + 1);
        const t = m[e];
        m[e] = m[j];
        m[j] = t;
      }
    }
    for (let i = 0; i < this.z.length; i++) this.z[i] = o.sigma * this.rng.normal();
  }

  readStep(step: number): Routing {
    const o = this.options;
    if (!Number.isInteger(step) || step < 0 || step >= o.steps) {
      throw new EplbInputError("step", step, `must be an integer in 0..${o.steps - 1}`);
    }
    if (step < this.next) this.reset();
    while (this.next < step) this.advance();
    const routing = this.generate();
    this.advance();
    return routing;
  }

  /** One step of popularity drift. */
  private advance(): void {
    if (this.innovation > 0) {
      const z = this.z;
      for (let i = 0; i < z.length; i++) {
        z[i] = this.rho * z[i] + this.innovation * this.rng.normal();
      }
    }
    this.next++;
  }

  private generate(): Routing {
    const { tokens, layers: L, experts: E, k, clusters: C, affinity } = this.options;
    const rng = this.rng;
    const { members, start, z } = this;
    const topk = new Int32Array(tokens * L * k);
    // Cumulative popularity in cluster order (a token's cluster and its in-cluster choices)
    // and in expert order (its out-of-cluster choices).
    const cumMembers = new Float64Array(E);
    const cumCluster = new Float64Array(C);
    const cumAll = new Float64Array(E);
    const chosen = new Uint8Array(E);
    for (let l = 0; l < L; l++) {
      const m = members.subarray(l * E, (l + 1) * E);
      let total = 0;
      for (let e = 0; e < E; e++) {
        total += Math.exp(z[l * E + e]);
        cumAll[e] = total;
      }
      let acc = 0;
      for (let c = 0; c < C; c++) {
        for (let i = start[c]; i < start[c + 1]; i++) {
          acc += Math.exp(z[l * E + m[i]]);
          cumMembers[i] = acc;
        }
        cumCluster[c] = acc;
      }
      for (let t = 0; t < tokens; t++) {
        const c = pick(cumCluster, 0, C, rng.next() * acc);
        const lo = c > 0 ? cumCluster[c - 1] : 0;
        const span = cumCluster[c] - lo;
        const base = (t * L + l) * k;
        for (let j = 0; j < k; j++) {
          let e = -1;
          // Redraw a repeat; after a few tries take the next free expert so a tiny cluster or
          // k close to E cannot loop for long.
          for (let tries = 0; tries < 16 && (e < 0 || chosen[e]); tries++) {
            e =
              rng.next() < affinity
                ? m[pick(cumMembers, start[c], start[c + 1], lo + rng.next() * span)]
                : pick(cumAll, 0, E, rng.next() * total);
          }
          while (chosen[e]) e = (e + 1) % E;
          chosen[e] = 1;
          topk[base + j] = e;
        }
        for (let j = 0; j < k; j++) chosen[topk[base + j]] = 0;
      }
    }
    return makeRouting({ tokens, layers: L, k, experts: E, topk, rank: null });
  }
}

/**
 * Seeded synthetic routing with co-activated experts, generated step by step: in every layer
 * the experts are split at random into `clusters` sets; each token picks a cluster (in
 * proportion to its popularity) and draws each of its top-k experts from it with probability
 * `affinity`, else from all experts, by lognormal(sigma) popularity that drifts from step to
 * step (so an expert's share of the load is its popularity, as in `synthTrace`). Clearly
 * synthetic: `description` says so. Used by `eplb synth --routing`, the locality bench and tests.
 *
 * @param options sizes, seed and shape of the co-activation
 * @returns a source of one {@link Routing} per step
 * @throws {EplbInputError} on an invalid option (see {@link resolveSynthRoutingOptions})
 * @example
 * ```ts
 * const src = synthRouting({ tokens: 4096, layers: 2, experts: 64, k: 6, seed: 7 });
 * const r = src.readStep(0); // r.topk: Int32Array(4096 * 2 * 6), distinct ids per (token, layer)
 * ```
 */
export function synthRouting(options: SynthRoutingOptions): SynthRoutingSource {
  return new RoutingGenerator(options);
}

/**
 * One step of synthetic routing (see {@link synthRouting}), with its description.
 *
 * @param options as {@link synthRouting} (`steps` is ignored beyond the first)
 * @returns the routing of step 0, marked synthetic
 * @throws {EplbInputError} on an invalid option
 * @example
 * ```ts
 * const r = synthesizeRouting({ tokens: 1000, layers: 1, experts: 64, k: 6 });
 * r.synthetic; // true; r.topk.length === 6000
 * ```
 */
export function synthesizeRouting(
  options: SynthRoutingOptions,
): Routing & { synthetic: true; description: string } {
  const src = synthRouting({ ...options, steps: 1 });
  return { ...src.readStep(0), synthetic: true, description: src.description };
}

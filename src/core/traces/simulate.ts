import { offNodeShare } from "../blocks/locality.js";
import { gateHorizonSteps, gateRebalance } from "../cost/gate.js";
import { CostLedger, type StrategyCost } from "../cost/ledger.js";
import type { CostModel } from "../cost/model.js";
import { distinctSlotMask } from "../cost/price.js";
import { EplbInputError, requireInteger } from "../model/errors.js";
import { checkShapeLimits } from "../model/limits.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import { makeTopology, type Topology } from "../model/topology.js";
import { DEFAULT_POLICY, getPolicy } from "../policies/index.js";
import { rebalanceExperts } from "../rebalance.js";
import type { Routing } from "../routing/routing.js";
import {
  createEstimator,
  DEFAULT_ESTIMATOR,
  type EstimatorKind,
  type EstimatorSpec,
  type LoadEstimator,
  type LoadTrace,
  resolveEstimatorSpec,
} from "./estimators.js";
import { contiguousStepBalancedness, judgeStep, stepUs } from "./judge.js";
import { type TraceSource, traceSource } from "./source.js";

export { type TraceSource, traceSource } from "./source.js";

/** What to simulate: the cluster, the rebalancing schedule, and how plans are made. */
export interface SimulationConfig {
  numReplicas: number;
  numGroups: number;
  numNodes: number;
  numGpus: number;
  /** Steps between two rebalances; the first rebalance happens after the first `interval` steps. */
  interval: number;
  /** Steps of history each estimate looks at. */
  window: number;
  /** Policy of the configuration under test and of the oracle; default {@link DEFAULT_POLICY}. */
  policy?: string;
  /** Load estimator of the configuration under test; default {@link DEFAULT_ESTIMATOR}. */
  estimator?: EstimatorKind;
  /** `ema` half-life in steps (default `window / 4`). */
  halfLife?: number;
  /** `meanstd`: standard deviations added (default 1). */
  k?: number;
  /** `meanstd`: time slices of the window (default 4). */
  slices?: number;
  /**
   * Rebalance from the previous placement (`options.previous` of `rebalanceExperts`), so a policy
   * that supports it can keep most slots; default true. False re-plans from scratch every time.
   */
  fromPrevious?: boolean;
  /**
   * Extra options for `rebalanceExperts` (for example a move budget or a minimum gain); policies
   * read the fields they know.
   */
  rebalanceOptions?: Record<string, unknown>;
  /** Also run the baselines (no balancing, deepseek re-planning, oracle); default true. */
  baselines?: boolean;
  /**
   * Also judge eplb's first placement kept for the whole replay, never rebalanced
   * (`baselines.static`): what not rebalancing costs (`--recommend` compares with it); default false.
   */
  staticBaseline?: boolean;
  /** Keep the per-step balancedness series; default true. */
  series?: boolean;
  /** Called after every chunk of `interval` steps with the steps done and the total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Called after every judged chunk (steps `start .. start + len - 1`) with the placement each
   * strategy served them with (`none`: null, experts in order), e.g. to judge them on the
   * tokens' routing too (`RoutingReplay`, `eplb simulate --routing`).
   */
  onJudged?: (
    start: number,
    len: number,
    placements: Partial<Record<StrategyName, Placement | null>>,
  ) => void;
  /**
   * Prices the replay (docs/simulate.md, "Pricing"): every strategy's result gains `cost`, and
   * eplb's own rebalancing is gated by it (unless `costGate` is false).
   */
  cost?: CostModel;
  /** With `cost`: skip rebalances and layers whose expected saving is below their transfer time; default true. */
  costGate?: boolean;
  /**
   * The gate's horizon in intervals: a change is expected to save MoE time over this many
   * intervals (it stays until a later rebalance changes it again); default
   * `DEFAULT_GATE_INTERVALS` (3). 1 counts only the steps before the next rebalance.
   */
  costGateIntervals?: number;
  /**
   * eplb's own rebalances plan with the tokens' routing (docs/locality.md, "In a replay"): at
   * the rebalance of step `t` the policy gets `routing(from, t)`, the routing of the steps of its
   * estimation window (`from = max(0, t - window)`), with `localityTolerance` and, when it
   * rebalances from the previous placement, `localityGain`. The baselines plan without it.
   */
  localityPlanning?: LocalityPlanning;
}

/** How eplb's rebalances of a replay plan for locality ({@link SimulationConfig.localityPlanning}). */
export interface LocalityPlanning {
  /** The routing of steps `from .. to - 1` (a window's tokens, sampled as the caller sees fit). */
  routing: (from: number, to: number) => Routing;
  /** `rebalanceExperts`' `localityTolerance`; its default when absent. */
  localityTolerance?: number;
  /** `rebalanceExperts`' `localityGain` (from the previous placement only); its default when absent. */
  localityGain?: number;
}

/** Names of the simulated strategies. */
export type StrategyName = "eplb" | "none" | "deepseek" | "oracle" | "static";

/** How one strategy fared over the judged steps. */
export interface StrategyResult {
  name: StrategyName;
  /** Mean over judged steps of the step's balancedness (mean/max GPU load, averaged over layers). */
  meanRealizedBalancedness: number;
  /** The worst judged step's balancedness. */
  worstRealizedBalancedness: number;
  /** Mean over rebalances (after the first, which deploys the initial plan) of slots changed. */
  movedSlotsPerRebalance: number;
  /** {@link movedSlotsPerRebalance} as a fraction of all slots (`layers * numReplicas`). */
  movedSlotsFraction: number;
  /**
   * Share of all judged load served by replicas off their group's home node: 0 under the strict
   * hierarchical contract, the price in inter-node traffic of a relaxed hierarchy.
   */
  offNodeShare: number;
  /** Slots whose expert changed at each rebalance (the first is 0: initial deployment). */
  movedSlots: Int32Array;
  /** Balancedness of every judged step (empty when `series` is false). */
  balancedness: Float64Array;
  /** The replay priced in milliseconds: only when the configuration has a `cost` model. */
  cost?: StrategyCost;
}

/** Everything a simulation measured. */
export interface SimulationResult {
  steps: number;
  layers: number;
  experts: number;
  topology: Topology;
  interval: number;
  window: number;
  policy: string;
  estimator: Required<EstimatorSpec>;
  /** Estimator of the deepseek baseline: always the window mean, as engines record loads. */
  baselineEstimator: Required<EstimatorSpec>;
  fromPrevious: boolean;
  /** The extra `rebalanceExperts` options used (move budget, minimum gain...), as given. */
  rebalanceOptions: Record<string, unknown>;
  /** First judged step (= interval): earlier steps only warm the estimator up. */
  firstJudgedStep: number;
  judgedSteps: number;
  /** Step at which each rebalance took effect. */
  rebalanceSteps: number[];
  /** The configuration under test. */
  eplb: StrategyResult;
  /** The configuration's placement after the last rebalance. */
  finalPlacement: Placement;
  /** Loads the last placement was judged on: the sum of the steps after the last rebalance. */
  finalLoads: LoadMatrix;
  /** Baselines, when requested: contiguous experts, deepseek re-planning fresh, oracle. */
  baselines: Partial<Record<Exclude<StrategyName, "eplb">, StrategyResult>>;
  /** The cost model the replay was priced with, whether eplb's gate was on, and its horizon. */
  cost?: { model: CostModel; gate: boolean; gateIntervals: number };
  /** With `localityPlanning`: the locality options eplb's rebalances were given. */
  localityPlanning?: { localityTolerance?: number; localityGain?: number };
}

/** Per-slot share of its expert's load: `1 / replicaCount`, laid out like `phy2log`. */
function slotShares(p: Placement): Float64Array {
  const { layers, numReplicas: P, numExperts: E } = p;
  const out = new Float64Array(layers * P);
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < P; s++) out[l * P + s] = 1 / p.logcnt[l * E + p.phy2log[l * P + s]];
  }
  return out;
}

/**
 * Balancedness of one step under a placement: per layer mean/max GPU load (a replica carries
 * `load / replicaCount`), averaged over layers; an all-zero layer counts as 1.
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * stepBalancedness(new Float64Array([8, 2, 4]), 0, p.phy2log, slotSharesOf(p), 1, 3, 4, 2);
 * // 0.875: GPU loads [6, 8]
 * ```
 */
export function stepBalancedness(
  loads: Float64Array,
  offset: number,
  phy2log: Int32Array,
  shares: Float64Array,
  layers: number,
  numExperts: number,
  numReplicas: number,
  numGpus: number,
): number {
  // The simulator's own loop, on the placement's cells built here once.
  const cells = slotCells(phy2log, layers, numReplicas, numExperts);
  return judgeStep(loads, offset, cells, shares, layers, numReplicas, numGpus, null, null);
}

/**
 * {@link slotShares} exported for callers of {@link stepBalancedness}.
 *
 * @example
 * ```ts
 * slotSharesOf(placementFromPhy2log([[0, 1, 0]], 2)); // Float64Array [0.5, 1, 0.5]
 * ```
 */
export function slotSharesOf(p: Placement): Float64Array {
  return slotShares(p);
}

/** Per slot, the index of its expert's cell in a `[layers][experts]` step: `l * E + expert`. */
function slotCells(phy2log: Int32Array, layers: number, P: number, E: number): Int32Array {
  const cells = new Int32Array(layers * P);
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < P; s++) cells[l * P + s] = l * E + phy2log[l * P + s];
  }
  return cells;
}

/** Reads steps `start .. start+len-1` into `chunk` (`[step][cell]`). */
function readChunk(source: TraceSource, start: number, len: number, chunk: Float64Array): void {
  const n = source.layers * source.experts;
  for (let j = 0; j < len; j++) source.readStep(start + j, chunk, j * n);
}

/** Sums the chunk's `len` steps into `out`. */
function sumChunk(chunk: Float64Array, len: number, n: number, out: Float64Array): void {
  out.fill(0);
  for (let j = 0; j < len; j++) {
    const base = j * n;
    for (let i = 0; i < n; i++) out[i] += chunk[base + i];
  }
}

/**
 * Judges every step of the chunk under a track's placement (or, for `none`, without EPLB).
 * The per-chunk loops live in small functions rather than in `simulate`'s body: one long
 * activation cannot pick up re-optimised code after a deoptimisation, small calls do.
 */
function judgeChunk(
  track: Track,
  chunk: Float64Array,
  len: number,
  layers: number,
  experts: number,
  numReplicas: number,
  numGpus: number,
  keep: boolean,
): void {
  const n = layers * experts;
  for (let j = 0; j < len; j++) {
    const model = track.ledger ? track.ledger.model : null;
    const b =
      track.name === "none"
        ? contiguousStepBalancedness(chunk, j * n, layers, experts, numGpus, model)
        : judgeStep(
            chunk,
            j * n,
            track.cells,
            track.shares,
            layers,
            numReplicas,
            numGpus,
            track.distinct,
            model,
          );
    track.record(b, keep);
    track.ledger?.step(stepUs[0], keep);
  }
}

/** Feeds the chunk's steps to the estimator. */
function pushChunk(estimator: LoadEstimator, chunk: Float64Array, len: number, n: number): void {
  for (let j = 0; j < len; j++) estimator.push(chunk, j * n);
}

function countMoved(a: Int32Array, b: Int32Array): number {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved;
}

/** Running state of one planned strategy. */
class Track {
  placement: Placement | null = null;
  shares: Float64Array = new Float64Array(0);
  /** `l * numExperts + phy2log[l * numReplicas + s]`: each slot's index into a step's loads. */
  cells: Int32Array = new Int32Array(0);
  /** With a cost model: `distinctSlotMask` of the placement, and the times booked. */
  distinct: Uint8Array | null = null;
  ledger: CostLedger | null = null;
  readonly moved: number[] = [];
  readonly series: Float64Array;
  sum = 0;
  worst = Number.POSITIVE_INFINITY;
  judged = 0;
  /** Load served off its group's home node, and all load, over the judged steps. */
  offNodeLoad = 0;
  totalLoad = 0;

  constructor(
    readonly name: StrategyName,
    seriesLength: number,
  ) {
    this.series = new Float64Array(seriesLength);
  }

  adopt(p: Placement, slotsPerGpu: number, stallMs?: number): void {
    this.moved.push(this.placement ? countMoved(this.placement.phy2log, p.phy2log) : 0);
    if (this.ledger) {
      this.ledger.rebalance(this.placement, p, stallMs);
      this.distinct = distinctSlotMask(p, slotsPerGpu);
    }
    this.placement = p;
    this.shares = slotShares(p);
    const { layers, numReplicas: P, numExperts: E } = p;
    this.cells = slotCells(p.phy2log, layers, P, E);
  }

  record(b: number, keep: boolean): void {
    if (keep) this.series[this.judged] = b;
    this.sum += b;
    if (b < this.worst) this.worst = b;
    this.judged++;
  }

  result(totalSlots: number, gated = false): StrategyResult {
    const later = this.moved.slice(1);
    const perRebalance = later.length ? later.reduce((a, b) => a + b, 0) / later.length : 0;
    return {
      name: this.name,
      meanRealizedBalancedness: this.judged ? this.sum / this.judged : 1,
      worstRealizedBalancedness: this.judged ? this.worst : 1,
      movedSlotsPerRebalance: perRebalance,
      movedSlotsFraction: perRebalance / totalSlots,
      movedSlots: Int32Array.from(this.moved),
      offNodeShare: this.totalLoad > 0 ? this.offNodeLoad / this.totalLoad : 0,
      balancedness: this.series,
      ...(this.ledger ? { cost: this.ledger.result(gated) } : {}),
    };
  }
}

/**
 * Replays a load trace as an engine would run EPLB on it: every `interval` steps the loads of
 * the past `window` steps are estimated, the policy rebalances (from the previous placement, so
 * a policy that supports `options.previous` keeps slots), and each following step is judged by
 * its realised balancedness (tokens split evenly among an expert's replicas). Steps before the
 * first rebalance only warm the estimator up. Baselines: `none` (experts in order on their GPUs,
 * no replication: EP without EPLB), `deepseek` (what engines run today: DeepSeek's algorithm
 * re-planning from scratch every interval on the mean load of the window, the statistic their
 * recorders keep, whatever the configuration's estimator), `oracle` (the policy planning, from
 * scratch, on the very steps it is judged on).
 *
 * @example
 * ```ts
 * // Popularity flips after two steps; two slots on each of two GPUs.
 * const trace = { steps: 4, layers: 1, experts: 2, data: new Float64Array([3, 1, 3, 1, 1, 3, 1, 3]) };
 * const r = simulate(trace, {
 *   numReplicas: 4, numGroups: 1, numNodes: 1, numGpus: 2, interval: 2, window: 2, policy: "deepseek",
 * });
 * r.eplb.balancedness; // Float64Array [0.6, 0.6]: planned for [3, 1], judged on [1, 3]
 * r.baselines.oracle?.meanRealizedBalancedness; // 1: planned on [1, 3] itself
 * r.baselines.none?.meanRealizedBalancedness; // 0.666...: GPU loads [1, 3]
 * ```
 */
export function simulate(
  trace: LoadTrace | TraceSource,
  config: SimulationConfig,
): SimulationResult {
  const source = "readStep" in trace ? trace : traceSource(trace);
  const { steps: T, layers: L, experts: E } = source;
  requireInteger("steps", T, 1);
  requireInteger("layers", L, 1);
  requireInteger("experts", E, 1);
  const topology = makeTopology(
    E,
    config.numReplicas,
    config.numGroups,
    config.numNodes,
    config.numGpus,
  );
  checkShapeLimits({ layers: L, replicas: config.numReplicas });
  const { numReplicas: P, numGpus: G } = topology;
  const interval = requireInteger("interval", config.interval, 1);
  if (interval >= T) {
    throw new EplbInputError(
      "interval",
      interval,
      `must be smaller than the trace's steps (${T}) so at least one rebalance is judged`,
    );
  }
  const estimatorSpec = resolveEstimatorSpec({
    kind: config.estimator ?? DEFAULT_ESTIMATOR,
    window: config.window,
    halfLife: config.halfLife,
    k: config.k,
    slices: config.slices,
  });
  const policyName = config.policy ?? DEFAULT_POLICY;
  const policy = getPolicy(policyName);
  const deepseek = getPolicy("deepseek");
  const fromPrevious = config.fromPrevious ?? true;
  const withBaselines = config.baselines ?? true;
  const keepSeries = config.series ?? true;
  const n = L * E;

  const estimator: LoadEstimator = createEstimator(L, E, estimatorSpec);
  const estimate: LoadMatrix = { layers: L, experts: E, data: new Float64Array(n) };
  // The deepseek baseline models the engines, which plan on the window's mean load: with another
  // estimator under test it gets a mean estimator of its own.
  const windowMean: LoadEstimator | null =
    withBaselines && estimatorSpec.kind !== "mean"
      ? createEstimator(L, E, { kind: "mean", window: estimatorSpec.window })
      : null;
  const meanEstimate: LoadMatrix = windowMean
    ? { layers: L, experts: E, data: new Float64Array(n) }
    : estimate;
  const chunkSum: LoadMatrix = { layers: L, experts: E, data: new Float64Array(n) };
  const chunk = new Float64Array(interval * n);
  const judged = T - interval;
  const seriesLength = keepSeries ? judged : 0;
  const main = new Track("eplb", seriesLength);
  const ds = new Track("deepseek", withBaselines ? seriesLength : 0);
  const oracle = new Track("oracle", withBaselines ? seriesLength : 0);
  const none = new Track("none", withBaselines ? seriesLength : 0);
  const kept = new Track("static", config.staticBaseline ? seriesLength : 0);
  const tracks = [main, ...(withBaselines ? [ds, oracle, none] : [])];
  if (config.staticBaseline) tracks.push(kept);
  const rebalanceSteps: number[] = [];
  const cost = config.cost ?? null;
  const gate = cost !== null && (config.costGate ?? true);
  if (cost) {
    for (const track of tracks) track.ledger = new CostLedger(cost, topology, track.series.length);
  }
  const S = topology.slotsPerGpu;
  const gateSteps = gateHorizonSteps(interval, config.costGateIntervals);
  const locality = config.localityPlanning ?? null;

  for (let start = 0; start < T; start += interval) {
    const len = Math.min(interval, T - start);
    readChunk(source, start, len, chunk);
    if (start > 0) {
      rebalanceSteps.push(start);
      estimator.estimate(estimate.data as Float64Array);
      const options: Record<string, unknown> = { ...config.rebalanceOptions, policy: policyName };
      if (fromPrevious && main.placement) options.previous = main.placement;
      if (locality) addLocality(options, locality, start, estimatorSpec.window);
      let next = rebalanceExperts(
        estimate,
        P,
        topology.numGroups,
        topology.numNodes,
        G,
        options,
      ).placement;
      let stallMs: number | undefined;
      if (gate && cost && main.placement && main.ledger) {
        // Judged against the placement in force, on the estimate the policy planned on, over
        // the steps a change is expected to serve (docs/simulate.md, "The gate").
        const d = gateRebalance(main.placement, next, estimate, topology, cost, gateSteps);
        next = d.placement;
        stallMs = d.stallMs;
        main.ledger.skippedLayers += d.skippedLayers;
        if (d.skipped) main.ledger.skippedRebalances++;
      }
      main.adopt(next, S, stallMs);
      if (!kept.placement) kept.adopt(next, S);
      else {
        kept.moved.push(0);
        kept.ledger?.idle();
      }
      sumChunk(chunk, len, n, chunkSum.data as Float64Array);
      if (withBaselines) {
        windowMean?.estimate(meanEstimate.data as Float64Array);
        ds.adopt(deepseek.plan(meanEstimate, topology, {}), S);
        // The oracle plans with the configuration's options too (e.g. a relaxed hierarchy),
        // so it bounds what this configuration could reach, not a stricter one.
        oracle.adopt(
          policy.plan(chunkSum, topology, { ...config.rebalanceOptions, policy: policyName }),
          S,
        );
        none.ledger?.idle();
      }
      for (const track of tracks) {
        judgeChunk(track, chunk, len, L, E, P, G, keepSeries);
        if (topology.hierarchical && track.placement) {
          const total = (chunkSum.data as Float64Array).reduce((a, b) => a + b, 0);
          const { numGroups, numNodes } = topology;
          track.offNodeLoad +=
            offNodeShare(chunkSum, track.placement, { numGroups, numNodes }) * total;
          track.totalLoad += total;
        }
      }
      config.onJudged?.(start, len, {
        eplb: main.placement,
        ...(withBaselines ? { deepseek: ds.placement, oracle: oracle.placement, none: null } : {}),
        ...(config.staticBaseline ? { static: kept.placement } : {}),
      });
    }
    pushChunk(estimator, chunk, len, n);
    if (windowMean) pushChunk(windowMean, chunk, len, n);
    config.onProgress?.(start + len, T);
  }

  const totalSlots = L * P;
  const baselines: SimulationResult["baselines"] = {};
  if (withBaselines) {
    none.moved.push(...rebalanceSteps.map(() => 0));
    baselines.none = none.result(totalSlots);
    baselines.deepseek = ds.result(totalSlots);
    baselines.oracle = oracle.result(totalSlots);
  }
  if (config.staticBaseline) baselines.static = kept.result(totalSlots);
  return {
    steps: T,
    layers: L,
    experts: E,
    topology,
    interval,
    window: estimatorSpec.window,
    policy: policyName,
    estimator: estimatorSpec,
    baselineEstimator: resolveEstimatorSpec({ kind: "mean", window: estimatorSpec.window }),
    fromPrevious,
    rebalanceOptions: { ...config.rebalanceOptions },
    firstJudgedStep: interval,
    judgedSteps: judged,
    rebalanceSteps,
    eplb: main.result(totalSlots, gate),
    finalPlacement: main.placement as Placement,
    finalLoads: chunkSum,
    baselines,
    ...(cost ? { cost: { model: cost, gate, gateIntervals: gateSteps / interval } } : {}),
    ...(locality ? { localityPlanning: localityEcho(locality, fromPrevious) } : {}),
  };
}

/** Adds the routing of the window before step `start` and the locality options to a rebalance's. */
function addLocality(
  options: Record<string, unknown>,
  locality: LocalityPlanning,
  start: number,
  window: number,
): void {
  options.routing = locality.routing(Math.max(0, start - window), start);
  if (locality.localityTolerance !== undefined) {
    options.localityTolerance = locality.localityTolerance;
  }
  // The gain prices moves against the previous placement: the first plan has none.
  if (locality.localityGain !== undefined && options.previous !== undefined) {
    options.localityGain = locality.localityGain;
  }
}

function localityEcho(
  locality: LocalityPlanning,
  fromPrevious: boolean,
): NonNullable<SimulationResult["localityPlanning"]> {
  return {
    ...(locality.localityTolerance !== undefined
      ? { localityTolerance: locality.localityTolerance }
      : {}),
    ...(fromPrevious && locality.localityGain !== undefined
      ? { localityGain: locality.localityGain }
      : {}),
  };
}

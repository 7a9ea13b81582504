// `eplb simulate --recommend`: does rebalancing pay, and how often? A priced sweep over the
// interval (and the slot count) through the sweep runner, and the answer read off its rows. The
// CLI prints it (src/cli/recommend.ts).
import type { LoadTrace } from "../core/traces/estimators.js";
import { type PlainConfig, runSweep, type SweepRow, sweepGrid } from "./sweep.js";

/** Intervals `--recommend` tries when `--interval` gives one value: those shorter than the trace. */
export const RECOMMEND_INTERVALS = [10, 25, 50, 100, 200, 500, 1000, 2000, 5000] as const;

/** One setup of the sweep, priced. */
export interface RecommendRow {
  interval: number;
  replicas: number;
  /** eplb's total: MoE time of the judged steps plus its rebalances' stalls. */
  totalMs: number;
  /** No balancing's total over the same judged steps. */
  noneTotalMs: number;
  /** eplb's first placement kept, never rebalanced, over the same steps: not rebalancing. */
  staticTotalMs: number;
  /** Deepseek re-planning's total over the same steps (engines' way, never gated). */
  deepseekTotalMs: number;
  /** `noneTotalMs / totalMs`: above 1, faster than no balancing. */
  speedupVsNone: number;
  /** `deepseekTotalMs / totalMs`. */
  speedupVsDeepseek: number;
  /** `staticTotalMs / totalMs`: above 1, rebalancing pays. */
  speedupVsStatic: number;
  /** Rebalances after the first, and how many of them actually moved weights (not skipped by the gate). */
  rebalances: number;
  rebalancesDone: number;
  /** Rebalancing pays here: eplb takes less time than its first placement kept. */
  pays: boolean;
  /** The sweep row (all figures). */
  row: SweepRow;
}

/** The answer of `--recommend`. */
export interface Recommendation {
  rows: RecommendRow[];
  /**
   * The setup with the least time relative to no balancing over the same steps, among those
   * where rebalancing pays (among all when it pays nowhere).
   */
  best: RecommendRow;
  /** Per slot count: the shortest interval at which rebalancing pays (beats its first placement kept), or null where it never does. */
  breakEven: Array<{ replicas: number; interval: number | null }>;
  /** Whether rebalancing pays at any setup tried. */
  pays: boolean;
}

/**
 * The setups `--recommend` replays: the base configuration at each interval (and slot count),
 * the window following the interval unless it was given, each with the static baseline (eplb's
 * first placement kept) that says what not rebalancing costs.
 *
 * @param base the configuration (with a `cost` model and the baselines on)
 * @param intervals intervals to try
 * @param replicas slot counts to try (default: the base's)
 * @param windowGiven whether the user fixed the window (otherwise window = interval)
 * @returns the grid, intervals varying fastest within a slot count
 * @example
 * ```ts
 * const base = { numReplicas: 288, numGroups: 8, numNodes: 4, numGpus: 32, interval: 100, window: 100 };
 * recommendGrid(base, [50, 100], [288, 320], false).map((c) => [c.numReplicas, c.interval, c.window]);
 * // [[288, 50, 50], [288, 100, 100], [320, 50, 50], [320, 100, 100]]
 * ```
 */
export function recommendGrid(
  base: PlainConfig,
  intervals: readonly number[],
  replicas: readonly number[] = [base.numReplicas],
  windowGiven = false,
): PlainConfig[] {
  const grid = sweepGrid(base, {
    replicas: replicas.map(String),
    interval: intervals.map(String),
  });
  return grid.map((c) => ({
    ...c,
    staticBaseline: true,
    ...(windowGiven ? {} : { window: c.interval }),
  }));
}

/**
 * Reads the answer off a priced sweep: each setup's time against not rebalancing (its first
 * placement kept), no balancing and deepseek re-planning over the same judged steps; the best
 * setup where rebalancing pays (least time relative to no balancing: setups with other intervals
 * judge other steps, so their totals are compared through that ratio); the break-even interval per slot count (the
 * shortest at which rebalancing beats keeping the first placement); whether rebalancing pays at all.
 *
 * @param rows sweep rows with `cost` on eplb and the `none`, `deepseek` and `static` baselines
 * @returns the recommendation
 * @throws Error when a row lacks the prices (a sweep run without a cost model or baselines)
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10, cost };
 * const rec = recommendFromRows(await runSweep(trace, recommendGrid(base, [10, 50]), 1, () => {}));
 * rec.pays; // true
 * rec.breakEven; // [{ replicas: 24, interval: 10 }]
 * ```
 */
export function recommendFromRows(rows: readonly SweepRow[]): Recommendation {
  const priced = rows.map((row): RecommendRow => {
    const mine = row.cost;
    const none = row.baselines.none?.cost;
    const ds = row.baselines.deepseek?.cost;
    const kept = row.baselines.static?.cost;
    if (!mine || !none || !ds || !kept) {
      throw new Error("--recommend needs priced rows with the none, deepseek and static baselines");
    }
    const rebalances = row.rebalances - 1;
    const rebalancesDone = rebalances - (mine.skippedRebalances ?? 0);
    return {
      interval: row.interval,
      replicas: row.replicas,
      totalMs: mine.totalMs,
      noneTotalMs: none.totalMs,
      staticTotalMs: kept.totalMs,
      deepseekTotalMs: ds.totalMs,
      speedupVsNone: none.totalMs / mine.totalMs,
      speedupVsDeepseek: ds.totalMs / mine.totalMs,
      speedupVsStatic: kept.totalMs / mine.totalMs,
      rebalances,
      rebalancesDone,
      pays: mine.totalMs < kept.totalMs,
      row,
    };
  });
  // Recommend rebalancing only where it pays; when it pays nowhere, the best setup still says
  // what keeping a placement gives.
  const paying = priced.filter((r) => r.pays);
  const best = (paying.length ? paying : priced).reduce((a, b) =>
    b.speedupVsNone > a.speedupVsNone ? b : a,
  );
  const breakEven: Recommendation["breakEven"] = [];
  for (const replicas of new Set(priced.map((r) => r.replicas))) {
    const paying = priced.filter((r) => r.replicas === replicas && r.pays);
    const interval = paying.length ? Math.min(...paying.map((r) => r.interval)) : null;
    breakEven.push({ replicas, interval });
  }
  return { rows: priced, best, breakEven, pays: priced.some((r) => r.pays) };
}

/**
 * Runs the priced sweep and reads the answer (see {@link recommendGrid}, {@link recommendFromRows}).
 *
 * @param trace the trace, whole (the sweep's worker threads share it)
 * @param grid the setups, from {@link recommendGrid}
 * @param workers worker threads
 * @param onProgress told the steps replayed so far and their total
 * @returns the recommendation
 * @throws EplbInputError or an Error from a worker when a setup cannot run
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10, cost };
 * const rec = await recommendSetup(trace, recommendGrid(base, [10, 50]), 1, () => {});
 * rec.rows.map((r) => r.interval); // [10, 50]
 * ```
 */
export async function recommendSetup(
  trace: LoadTrace,
  grid: PlainConfig[],
  workers: number,
  onProgress: (done: number, total: number) => void,
): Promise<Recommendation> {
  return recommendFromRows(await runSweep(trace, grid, workers, onProgress));
}

// The transfer-schedule stage of `eplb plan --previous`: a rebalance's transfers in rounds, priced
// under a cost model, and a move budget given in time (the slot budget whose schedule fits).

import type { CostModel } from "../core/cost/model.js";
import { scheduleTransfers, type TransferSchedule } from "../core/cost/schedule.js";
import { type Transfer, transferList } from "../core/evaluation/transfers.js";
import { EplbInputError } from "../core/model/errors.js";
import type { RebalanceResult } from "../core/rebalance.js";
import { type PlanMetrics, planWithMetrics } from "./plan.js";

/** What `metrics.schedule` of `eplb plan --previous` holds. */
export interface ScheduleMetrics {
  /** Rounds: in each, every GPU sends at most one and receives at most one expert. */
  rounds: number;
  /** Consecutive layers scheduled together (`--chunk-layers`); absent: all layers at once. */
  layerChunk?: number;
  /** With a cost model: the rounds' summed durations (each as long as its slowest copy), ms. */
  estimatedMs?: number;
  /** With `--move-budget` in time: the budget in ms. */
  moveBudgetMs?: number;
  /** With `--move-budget` in time: the rebalances planned to find the slot budget. */
  plansTried?: number;
}

/** The `--transfers` file: the transfers, and the same objects in rounds. */
export interface TransfersFile {
  transfers: Transfer[];
  /** Copies between slots of one GPU: no round needed (device-local copies). */
  local: Transfer[];
  /** `rounds[r]`: the copies of round `r`, each GPU at most once as sender and once as receiver. */
  rounds: Transfer[][];
  layerChunk?: number;
  /** With a cost model: per round, its slowest copy's time in ms. */
  roundMs?: number[];
  /** With a cost model: the sum of `roundMs`. */
  estimatedMs?: number;
}

/**
 * Schedules a rebalance's transfers and measures the schedule.
 *
 * @param result a `rebalanceExperts` result with `previous` (it has `transfers`)
 * @param model prices the rounds; null leaves `estimatedMs` out
 * @param layerChunk schedule chunks of this many layers one after another
 * @returns the schedule and its metrics, or null when the result has no transfers
 * @throws EplbInputError when `layerChunk` is not a positive integer
 * @example
 * ```ts
 * const previous = rebalanceExperts([[10, 40, 20, 30]], 8, 1, 2, 4).phy2log;
 * const next = rebalanceExperts([[40, 10, 30, 20]], 8, 1, 2, 4, { previous });
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * rebalanceSchedule(next, m)?.metrics.estimatedMs; // a few ms: rounds of 0.25 or 1 ms
 * ```
 */
export function rebalanceSchedule(
  result: RebalanceResult,
  model: CostModel | null,
  layerChunk?: number,
): { schedule: TransferSchedule; metrics: ScheduleMetrics } | null {
  if (!result.transfers) return null;
  const schedule = scheduleTransfers(result.transfers, result.topology, model ?? undefined, {
    layerChunk,
  });
  const metrics: ScheduleMetrics = { rounds: schedule.rounds };
  if (layerChunk !== undefined) metrics.layerChunk = layerChunk;
  if (model) metrics.estimatedMs = schedule.totalMs;
  return { schedule, metrics };
}

/**
 * The `--transfers` file's content: every transfer (plan order), the local copies apart, and the
 * other copies round by round, with each round's time under the cost model.
 *
 * @param result a `rebalanceExperts` result with `transfers`
 * @param schedule its schedule (from {@link rebalanceSchedule})
 * @param model the cost model the schedule was priced with, or null
 * @param layerChunk the chunking the schedule used, if any
 * @returns the JSON-ready object
 * @example
 * ```ts
 * const previous = rebalanceExperts([[10, 40, 20, 30]], 8, 1, 2, 4).phy2log;
 * const next = rebalanceExperts([[40, 10, 30, 20]], 8, 1, 2, 4, { previous });
 * const s = rebalanceSchedule(next, null);
 * transfersFile(next, s.schedule, null).rounds.length === s.metrics.rounds; // true
 * ```
 */
export function transfersFile(
  result: RebalanceResult,
  schedule: TransferSchedule,
  model: CostModel | null,
  layerChunk?: number,
): TransfersFile {
  const plan = result.transfers;
  const transfers = plan ? transferList(plan, result.topology) : [];
  const local = transfers.filter((_, i) => schedule.roundOf[i] < 0);
  const rounds: Transfer[][] = [];
  for (let r = 0; r < schedule.rounds; r++) {
    const round: Transfer[] = [];
    for (let k = schedule.roundStart[r]; k < schedule.roundStart[r + 1]; k++) {
      round.push(transfers[schedule.order[k]]);
    }
    rounds.push(round);
  }
  const file: TransfersFile = { transfers, local, rounds };
  if (layerChunk !== undefined) file.layerChunk = layerChunk;
  if (model) {
    file.roundMs = [...schedule.roundMs];
    file.estimatedMs = schedule.totalMs;
  }
  return file;
}

/** `planWithMetrics`' arguments: loads, the four shape numbers, the policy and the options. */
export type PlanArgs = Parameters<typeof planWithMetrics>;

/**
 * Plans a rebalance whose scheduled transfer time fits `budgetMs` under `model`: the largest slot
 * budget per layer (`moveBudget`, which each layer spends on its largest gains first; every
 * expert weighs the same, so that is the largest gain per byte) whose schedule fits, found by
 * bisection between 0 (the previous placement, no transfer) and every slot. Each step plans the
 * whole rebalance, so this costs about log2(slots) + 2 plans. The time is not guaranteed to
 * grow with the slot budget, so the answer is the largest budget found that fits, whose next
 * larger budget did not; it is always within the budget.
 *
 * @param args `planWithMetrics`' arguments; the options hold `previous` (`moveBudget` is searched)
 * @param budgetMs the time the transfers may take, ms
 * @param model the cost model pricing each round
 * @param layerChunk the schedule's layer chunks, if any
 * @returns the plan, its metrics (with `schedule`; `timeMs` covers every plan of the search) and
 *   its schedule
 * @throws EplbInputError when `previous` is missing or an option is invalid
 * @example
 * ```ts
 * const previous = rebalanceExperts([[10, 40, 20, 30]], 8, 1, 2, 4).phy2log;
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * const r = planWithinTime([toLoadMatrix([[40, 10, 30, 20]]), 8, 1, 2, 4, "balanced",
 *   { previous }], 1, m);
 * r.metrics.schedule.estimatedMs <= 1; // true
 * ```
 */
export function planWithinTime(
  args: PlanArgs,
  budgetMs: number,
  model: CostModel,
  layerChunk?: number,
): {
  result: RebalanceResult;
  metrics: PlanMetrics & { schedule: ScheduleMetrics };
  schedule: TransferSchedule;
} {
  const [loads, numReplicas, numGroups, numNodes, numGpus, policy, options = {}] = args;
  if (!options.previous) {
    throw new EplbInputError("previous", options.previous, "is needed for a move budget in time");
  }
  const started = performance.now();
  let plans = 0;
  const planWith = (moveBudget: number, compareRelabelled: boolean | undefined) => {
    plans++;
    return planWithMetrics(loads, numReplicas, numGroups, numNodes, numGpus, policy, {
      ...options,
      moveBudget,
      compareRelabelled,
    });
  };
  // The probes skip the relabelled fresh plan (a figure for the report, not for the search).
  const timeOf = (moveBudget: number): number =>
    rebalanceSchedule(planWith(moveBudget, false).result, model, layerChunk)?.schedule.totalMs ?? 0;
  let fits = 0;
  if (timeOf(numReplicas) <= budgetMs) fits = numReplicas;
  else {
    let over = numReplicas;
    while (over - fits > 1) {
      const mid = (fits + over) >> 1;
      if (timeOf(mid) <= budgetMs) fits = mid;
      else over = mid;
    }
  }
  const { result, metrics } = planWith(fits, options.compareRelabelled);
  const scheduled = rebalanceSchedule(result, model, layerChunk);
  if (!scheduled) throw new Error("internal: a rebalance from previous without transfers");
  const schedule = { ...scheduled.metrics, moveBudgetMs: budgetMs, plansTried: plans };
  // The summary's "planned in" covers the whole search, not only the last plan.
  const timeMs = performance.now() - started;
  return { result, metrics: { ...metrics, timeMs, schedule }, schedule: scheduled.schedule };
}

/** How {@link planScheduled} prices and schedules a rebalance. */
export interface SchedulePricing {
  /** Prices the rounds; null: rounds only. */
  model: CostModel | null;
  /** Schedule chunks of this many layers one after another. */
  layerChunk?: number;
  /** A move budget in time (needs `model`): see {@link planWithinTime}. */
  budgetMs?: number;
}

/**
 * What `eplb plan` runs: plans (within a time budget when `pricing.budgetMs` is given) and, for
 * a rebalance from `options.previous`, schedules its transfers, adding `metrics.schedule`.
 *
 * @param args `planWithMetrics`' arguments (loads, shape, policy, `rebalanceExperts` options)
 * @param pricing the cost model (or null), layer chunks and time budget
 * @returns the plan, its metrics and its schedule (null without `previous`)
 * @throws EplbInputError when an option is invalid, or `budgetMs` is given without a model
 * @example
 * ```ts
 * const previous = rebalanceExperts([[10, 40, 20, 30]], 8, 1, 2, 4).phy2log;
 * const r = planScheduled([toLoadMatrix([[40, 10, 30, 20]]), 8, 1, 2, 4, "balanced", { previous }],
 *   { model: null });
 * r.metrics.schedule?.rounds === r.schedule?.rounds; // true
 * ```
 */
export function planScheduled(
  args: PlanArgs,
  pricing: SchedulePricing,
): { result: RebalanceResult; metrics: PlanMetrics; schedule: TransferSchedule | null } {
  const { model, layerChunk, budgetMs } = pricing;
  if (budgetMs !== undefined) {
    if (!model) throw new EplbInputError("budgetMs", budgetMs, "needs a cost model");
    return planWithinTime(args, budgetMs, model, layerChunk);
  }
  const { result, metrics } = planWithMetrics(...args);
  const scheduled = rebalanceSchedule(result, model, layerChunk);
  if (scheduled) metrics.schedule = scheduled.metrics;
  return { result, metrics, schedule: scheduled?.schedule ?? null };
}

// The plan stage of a pipeline: plan a placement from loads and measure it, as `eplb plan` and
// `eplb report` do.

import {
  contiguousGpuLoads,
  evaluatePlacement,
  type PlacementMetrics,
  summarizeBalance,
} from "../core/evaluation/metrics.js";
import type { MigrationMetrics } from "../core/migration/index.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import { getPolicy } from "../core/policies/index.js";
import {
  type RebalanceOptions,
  type RebalanceResult,
  rebalanceExperts,
} from "../core/rebalance.js";
import type { Routing } from "../core/routing/routing.js";
import type { LocalityMetrics } from "../core/routing/summary.js";
import { type HierarchyMetrics, hierarchyMetrics } from "./locality.js";
import type { ScheduleMetrics } from "./schedule.js";

/** The `metrics` object `eplb plan` writes beside the placement. */
export interface PlanMetrics {
  policy: string;
  mode: "hierarchical" | "global";
  layers: number;
  experts: number;
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
  /** Without EPLB: experts in order, one slot each. */
  before: { balancedness: number; worstBalancedness: number };
  after: PlacementMetrics;
  timeMs: number;
  /** With `--previous`: slots changed, transfers by kind, max GPU load before/after/fresh. */
  migration?: MigrationMetrics;
  /** With `--previous`: the transfers' rounds and, under a cost model, their time. */
  schedule?: ScheduleMetrics;
  /**
   * Strict hierarchies (hierarchical, not relaxed): the hierarchy's own cost against the flat
   * lower bound, the plan's loss within it, and what `--relaxed` plans instead.
   */
  hierarchy?: HierarchyMetrics;
  /** With a routing (`--routing`): dispatch figures of the plan (and of `--previous`). */
  locality?: LocalityMetrics;
}

/**
 * Plans and measures: runs the policy, times it, and evaluates the plan against the same loads
 * and against EP without EPLB (experts in order, one slot each). What `eplb plan` and
 * `eplb report` run between reading the loads and writing the placement.
 *
 * @param loads load per (layer, expert)
 * @param numReplicas physical slots per layer
 * @param numGroups expert groups
 * @param numNodes nodes
 * @param numGpus GPUs
 * @param policy a registered policy name (see `policyNames()`)
 * @param options more `rebalanceExperts` options (`previous`, `moveBudget`, `relaxedHierarchy`...);
 *   `policy` here is overridden by the `policy` argument
 * @param routing a routing, for the relaxed alternative's remote nodes per token in
 *   `metrics.hierarchy` (the plan's own dispatch figures are `localityMetrics`)
 * @returns the plan and the figures `eplb plan` writes beside it (`timeMs` is wall time)
 * @throws EplbInputError when the shape, the policy or an option is invalid (as `rebalanceExperts`)
 * @example
 * ```ts
 * const loads = toLoadMatrix([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]]);
 * const { result, metrics } = planWithMetrics(loads, 16, 4, 2, 8, "deepseek");
 * metrics.after.balancedness; // 0.9...
 * metrics.before.balancedness; // lower: experts in order on the same GPUs
 * ```
 */
export function planWithMetrics(
  loads: LoadMatrix,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  policy: string,
  options: RebalanceOptions = {},
  routing: Routing | null = null,
): { result: RebalanceResult; metrics: PlanMetrics } {
  const start = performance.now();
  const result = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, {
    ...options,
    policy,
  });
  const timeMs = performance.now() - start;
  const before = summarizeBalance(contiguousGpuLoads(loads, numGpus), loads.layers, numGpus);
  const metrics: PlanMetrics = {
    policy,
    mode: result.topology.hierarchical ? "hierarchical" : "global",
    layers: loads.layers,
    experts: loads.experts,
    replicas: numReplicas,
    groups: numGroups,
    nodes: numNodes,
    gpus: numGpus,
    before: { balancedness: before.balancedness, worstBalancedness: before.worstBalancedness },
    after: evaluatePlacement(loads, result.placement, { numGpus, numNodes, numGroups }),
    timeMs,
  };
  if (result.migration) metrics.migration = result.migration;
  if (result.topology.hierarchical && !options.relaxedHierarchy) {
    const relaxable = getPolicy(policy).options?.includes("relaxedHierarchy");
    metrics.hierarchy = hierarchyMetrics(
      loads,
      metrics.after.maxGpuLoad,
      metrics.after.lowerBound,
      result.topology,
      relaxable ? policy : undefined,
      routing,
    );
  }
  return { result, metrics };
}

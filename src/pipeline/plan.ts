// The plan stage of a pipeline: plan a placement from loads and measure it, as `eplb plan` and
// `eplb report` do.

import {
  contiguousGpuLoads,
  evaluatePlacement,
  type PlacementMetrics,
  summarizeBalance,
} from "../core/evaluation/metrics.js";
import { type MigrationMetrics, toPreviousPlacement } from "../core/migration/index.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import { type Locality, localityOf } from "../core/model/topology.js";
import { getPolicy } from "../core/policies/index.js";
import { localityTolerance } from "../core/policies/locality.js";
import { localityGain } from "../core/policies/locality-moves.js";
import {
  type RebalanceOptions,
  type RebalanceResult,
  rebalanceExperts,
} from "../core/rebalance.js";
import { dispatchStats } from "../core/routing/dispatch.js";
import type { Routing } from "../core/routing/routing.js";
import type { LocalityMetrics } from "../core/routing/summary.js";
import { round6 } from "../core/routing/summary.js";
import { type HierarchyMetrics, hierarchyMetrics } from "./locality.js";
import type { ScheduleMetrics } from "./schedule.js";

/** One plan's figures in {@link LocalityPlanMetrics}. */
export interface LocalityPlanSide {
  remoteNodesPerToken: number;
  balancedness: number;
  /** Max GPU load, mean over layers. */
  maxGpuLoad: number;
}

/** The policy's plan against the same plan made local (`metrics.localityPlan`). */
export interface LocalityPlanMetrics {
  /** Where replicas could move: anywhere (`global`), off their group's node but one (`relaxed`), nowhere (`strict`: the plan is unchanged). */
  locality: Locality;
  tolerance: number;
  unlocalized: LocalityPlanSide;
  local: LocalityPlanSide;
  /**
   * With a previous placement: the plan without locality is the migrated one, and the locality
   * moves were priced in slots changed (`localityGain`).
   */
  fromPrevious?: LocalityFromPrevious;
}

/** `metrics.localityPlan.fromPrevious`: what the locality step of a rebalance bought and cost. */
export interface LocalityFromPrevious {
  /** Remote nodes per token a move had to save per slot it newly changed. */
  localityGain: number;
  /** Remote nodes per token of the previous placement (the planning routing). */
  previousRemoteNodesPerToken: number;
  /** Slots changed against the previous placement: the migrated plan's, and the final plan's. */
  unlocalizedSlotsChanged: number;
  localSlotsChanged: number;
}

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
  /**
   * With a routing (`--routing`, and with `--previous` the migrated plan): the plan without
   * locality against the plan made local, on the planning loads and routing.
   */
  localityPlan?: LocalityPlanMetrics;
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
  if (result.unlocalized && options.routing) {
    const shape = { numGpus, numNodes, numGroups };
    const side = (p: Placement, m: PlacementMetrics): LocalityPlanSide => ({
      remoteNodesPerToken: round6(
        dispatchStats(options.routing as Routing, p, shape).remoteNodesPerToken,
      ),
      balancedness: round6(m.balancedness),
      maxGpuLoad: round6(meanOf(m.maxGpuLoad)),
    });
    metrics.localityPlan = {
      locality: localityOf(result.topology, options.relaxedHierarchy),
      tolerance: localityTolerance(options.localityTolerance),
      unlocalized: side(result.unlocalized, evaluatePlacement(loads, result.unlocalized, shape)),
      local: side(result.placement, metrics.after),
    };
    if (options.previous !== undefined) {
      const t = result.topology;
      const previous = toPreviousPlacement(
        options.previous,
        loads.layers,
        t,
        options.relaxedHierarchy,
      );
      let unlocalizedSlotsChanged = 0;
      for (let i = 0; i < previous.phy2log.length; i++) {
        if (result.unlocalized.phy2log[i] !== previous.phy2log[i]) unlocalizedSlotsChanged++;
      }
      metrics.localityPlan.fromPrevious = {
        localityGain: localityGain(options.localityGain),
        previousRemoteNodesPerToken: round6(
          dispatchStats(options.routing, previous, shape).remoteNodesPerToken,
        ),
        unlocalizedSlotsChanged,
        localSlotsChanged: result.migration?.slotsChanged ?? 0,
      };
    }
  }
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

function meanOf(values: number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length > 0 ? sum / values.length : 0;
}

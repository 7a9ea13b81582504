// Under a strict hierarchy, what the hierarchy itself costs against what the plan loses within
// it, and what `--relaxed` would plan instead, as `eplb plan` and `eplb eval` print them (the
// dispatch figures under a routing are core/routing/summary.ts).

import { type HierarchyPrice, hierarchyPrice } from "../core/evaluation/hierarchy.js";
import { evaluatePlacement } from "../core/evaluation/metrics.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Topology } from "../core/model/topology.js";
import { rebalanceExperts } from "../core/rebalance.js";
import { dispatchStats } from "../core/routing/dispatch.js";
import type { Routing } from "../core/routing/routing.js";
import { round6 } from "../core/routing/summary.js";

/** `metrics.hierarchy`: the price of a strict hierarchy, and what `--relaxed` plans instead. */
export interface HierarchyMetrics extends HierarchyPrice {
  /**
   * The same loads planned with `--relaxed` (balanced policy, from scratch): what lifting the
   * hierarchy buys and what it costs in load served off its group's node.
   */
  relaxed?: {
    balancedness: number;
    maxOverLowerBound: number;
    offNodeShare: number;
    /** With a routing: its remote nodes per token. */
    remoteNodesPerToken?: number;
  };
}

/**
 * The hierarchy's own cost and the plan's loss within it, for a plan on a strict hierarchy
 * (hierarchical topology, not relaxed); with `relaxedPolicy`, also the same loads planned with
 * `relaxedHierarchy` by that policy, to show what `--relaxed` would buy.
 *
 * @param loads the loads planned
 * @param maxGpuLoad the plan's max GPU load per layer
 * @param flatBounds the flat lower bound per layer
 * @param topology the plan's topology (hierarchical)
 * @param relaxedPolicy a policy that reads `relaxedHierarchy` (balanced), or undefined to skip
 * @param routing a routing, to add the relaxed plan's remote nodes per token
 * @returns the figures
 * @throws {Error} when the topology is not hierarchical
 * @example
 * ```ts
 * const t = makeTopology(4, 4, 4, 2, 2);
 * const loads = toLoadMatrix([[5, 4, 3, 2]]);
 * hierarchyMetrics(loads, [7], [7], t).hierarchyCost; // 1
 * ```
 */
export function hierarchyMetrics(
  loads: LoadMatrix,
  maxGpuLoad: readonly number[],
  flatBounds: ArrayLike<number>,
  topology: Topology,
  relaxedPolicy?: string,
  routing?: Routing | null,
): HierarchyMetrics {
  const price = hierarchyPrice(loads, maxGpuLoad, flatBounds, topology);
  const out: HierarchyMetrics = { ...price, bound: price.bound.map(round6) };
  if (relaxedPolicy) {
    const { numReplicas, numGroups, numNodes, numGpus } = topology;
    const r = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, {
      policy: relaxedPolicy,
      relaxedHierarchy: true,
    });
    const m = evaluatePlacement(loads, r.placement, topology);
    out.relaxed = {
      balancedness: m.balancedness,
      maxOverLowerBound: m.maxOverLowerBound,
      offNodeShare: m.offNodeShare,
      ...(routing
        ? {
            remoteNodesPerToken: dispatchStats(routing, r.placement, topology).remoteNodesPerToken,
          }
        : {}),
    };
  }
  return out;
}

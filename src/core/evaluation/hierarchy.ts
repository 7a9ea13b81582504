import {
  EXACT_GROUP_PARTITIONS,
  GroupPackingWorkspace,
  groupPartitionCount,
  packGroupsToNodes,
} from "../blocks/locality.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Topology } from "../model/topology.js";
import { lowerBounds } from "./metrics.js";

/**
 * What a strict hierarchy (every replica of a group on its group's node) costs, and how much of
 * the gap to the flat lower bound is the plan's own (docs/locality.md, "The price of locality").
 */
export interface HierarchyPrice {
  /** Per layer: the best any plan keeping groups on nodes can do (see {@link hierarchyBounds}). */
  readonly bound: number[];
  /** Mean over layers of hierarchy bound / flat lower bound: what the hierarchy itself costs. */
  readonly hierarchyCost: number;
  readonly worstHierarchyCost: number;
  /** Mean over layers of max GPU load / hierarchy bound: the plan's loss within the hierarchy. */
  readonly lossWithin: number;
  readonly worstLossWithin: number;
  /**
   * True when every layer's group-to-node assignment was searched exhaustively, so the bound is a
   * true lower bound; false when a swap search found it (then the bound may be slightly high).
   */
  readonly exact: boolean;
}

/**
 * The lower bound of each layer's max GPU load under a strict hierarchy: over the group-to-node
 * assignments (`numGroups / numNodes` groups per node), the smallest largest node bound, where a
 * node's bound is `max(node load / gpusPerNode, smallest achievable largest replica load of its
 * experts on its slotsPerNode slots)`; never below the flat bound of {@link lowerBounds}. Exact
 * when the assignments can be enumerated (`exact`; e.g. 8 groups on 4 nodes, 105 of them).
 *
 * @param loads load per (layer, expert)
 * @param topology a hierarchical topology (`numGroups % numNodes == 0`)
 * @returns the bound per layer and whether every layer was searched exhaustively
 * @throws {Error} when the topology is not hierarchical
 * @example
 * ```ts
 * // 4 groups of one expert on 2 nodes of 1 GPU x 2 slots: {5, 2} and {4, 3} -> 7
 * const t = makeTopology(4, 4, 4, 2, 2);
 * hierarchyBounds(toLoadMatrix([[5, 4, 3, 2]]), t); // { bounds: Float64Array [7], exact: true }
 * ```
 */
export function hierarchyBounds(
  loads: LoadMatrix,
  topology: Topology,
): { bounds: Float64Array; exact: boolean } {
  if (!topology.hierarchical) throw new Error("hierarchyBounds needs a hierarchical topology");
  const { numGroups, numNodes } = topology;
  const flat = lowerBounds(loads, topology);
  const nodeOfGroup = new Int32Array(numGroups);
  const ws = new GroupPackingWorkspace();
  const shape = {
    numExperts: loads.experts,
    numGroups,
    numNodes,
    gpusPerNode: topology.gpusPerNode,
    slotsPerNode: topology.slotsPerNode,
  };
  for (let l = 0; l < loads.layers; l++) {
    const node = packGroupsToNodes(loads.data, l * loads.experts, shape, nodeOfGroup, ws);
    if (node > flat[l]) flat[l] = node;
  }
  // The cases packGroupsToNodes solves exactly: one node, one group per node, or few partitions.
  const exact =
    numNodes === 1 ||
    numGroups === numNodes ||
    (numGroups <= 30 && groupPartitionCount(numGroups, numNodes) <= EXACT_GROUP_PARTITIONS);
  return { bounds: flat, exact };
}

/**
 * Splits a plan's distance from the flat lower bound into the hierarchy's own cost and the
 * plan's loss within the hierarchy.
 *
 * @param loads load per (layer, expert)
 * @param maxGpuLoad the plan's max GPU load per layer
 * @param flatBounds the flat lower bound per layer ({@link lowerBounds})
 * @param topology the hierarchical topology the plan was made for
 * @returns the two ratios, mean and worst over layers (an all-zero layer counts 1)
 * @throws {Error} when the topology is not hierarchical
 * @example
 * ```ts
 * const t = makeTopology(4, 4, 4, 2, 2);
 * const loads = toLoadMatrix([[5, 4, 3, 2]]);
 * hierarchyPrice(loads, [7], [7], t).lossWithin; // 1
 * ```
 */
export function hierarchyPrice(
  loads: LoadMatrix,
  maxGpuLoad: readonly number[],
  flatBounds: ArrayLike<number>,
  topology: Topology,
): HierarchyPrice {
  const { bounds, exact } = hierarchyBounds(loads, topology);
  let cost = 0;
  let worstCost = 0;
  let loss = 0;
  let worstLoss = 0;
  for (let l = 0; l < loads.layers; l++) {
    const c = flatBounds[l] > 0 ? bounds[l] / flatBounds[l] : 1;
    const w = bounds[l] > 0 ? maxGpuLoad[l] / bounds[l] : 1;
    cost += c;
    loss += w;
    if (c > worstCost) worstCost = c;
    if (w > worstLoss) worstLoss = w;
  }
  const n = Math.max(1, loads.layers);
  return {
    bound: Array.from(bounds),
    hierarchyCost: cost / n,
    worstHierarchyCost: worstCost,
    lossWithin: loss / n,
    worstLossWithin: worstLoss,
    exact,
  };
}

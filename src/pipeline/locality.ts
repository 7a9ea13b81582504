// Locality figures of a plan, as `eplb plan`, `eplb eval` and `eplb report` print them: the
// dispatch figures under a routing (docs/locality.md) and, under a strict hierarchy, what the
// hierarchy itself costs against what the plan loses within it.

import { type HierarchyPrice, hierarchyPrice } from "../core/evaluation/hierarchy.js";
import { evaluatePlacement } from "../core/evaluation/metrics.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import type { ClusterShape, Topology } from "../core/model/topology.js";
import { rebalanceExperts } from "../core/rebalance.js";
import { dispatchStats } from "../core/routing/dispatch.js";
import type { Routing } from "../core/routing/routing.js";

/** A placement's dispatch figures under a routing, as JSON. */
export interface DispatchSummary {
  /** Mean over (token, layer) of the remote nodes a token is sent to. */
  remoteNodesPerToken: number;
  /** Per layer, mean over tokens. */
  perLayer: number[];
  /** Share of (token, expert) choices served off the token's node. */
  crossNodeShare: number;
  /** `traffic[src][dst]`: token copies from node src to node dst, over tokens and layers. */
  traffic: number[][];
}

/** The routing a figure was measured on. */
export interface RoutingInfo {
  tokens: number;
  layers: number;
  k: number;
  /** `ranks`: each token's node from its rank; `spread`: unknown, spread evenly over nodes. */
  sources: "ranks" | "spread";
}

/** `metrics.locality` of `eplb plan` / `eplb eval`: dispatch figures of the placements compared. */
export interface LocalityMetrics {
  routing: RoutingInfo;
  /** The placement written (plan) or evaluated (eval). */
  placement: DispatchSummary;
  /** With `--previous`: the placement the engine runs now. */
  previous?: DispatchSummary;
}

/**
 * The dispatch figures of a placement as JSON (`traffic` nested `[src][dst]`).
 *
 * @param routing the routing (as many layers and experts as the placement)
 * @param placement the placement
 * @param shape `numGpus`, `numNodes`
 * @returns the figures
 * @throws EplbInputError as {@link dispatchStats}
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 1, layers: 1, k: 2, experts: 2,
 *   topk: new Int32Array([0, 1]), rank: new Int32Array([0]) });
 * dispatchSummary(r, placementFromPhy2log([[0, 1]], 2), { numGpus: 2, numNodes: 2 }).traffic;
 * // [[0, 1], [0, 0]]
 * ```
 */
export function dispatchSummary(
  routing: Routing,
  placement: Placement,
  shape: ClusterShape,
): DispatchSummary {
  const s = dispatchStats(routing, placement, shape);
  const n = s.numNodes;
  const traffic: number[][] = [];
  for (let i = 0; i < n; i++) traffic.push(Array.from(s.traffic.subarray(i * n, (i + 1) * n), r6));
  return {
    remoteNodesPerToken: r6(s.remoteNodesPerToken),
    perLayer: Array.from(s.perLayer, r6),
    crossNodeShare: r6(s.crossNodeShare),
    traffic,
  };
}

const r6 = (x: number): number => Number(x.toPrecision(6));

/**
 * The `metrics.locality` object: the routing's shape and the dispatch figures of a placement
 * (and of the previous one, when given).
 *
 * @param routing the routing
 * @param placement the placement written or evaluated
 * @param shape `numGpus`, `numNodes`
 * @param previous the placement running now, if any
 * @returns the figures
 * @throws EplbInputError as {@link dispatchStats}
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 1, layers: 1, k: 2, experts: 2,
 *   topk: new Int32Array([0, 1]), rank: null });
 * localityMetrics(r, placementFromPhy2log([[0, 1]], 2), { numGpus: 2, numNodes: 2 }).placement
 *   .remoteNodesPerToken; // 1
 * ```
 */
export function localityMetrics(
  routing: Routing,
  placement: Placement,
  shape: ClusterShape,
  previous?: Placement,
): LocalityMetrics {
  return {
    routing: {
      tokens: routing.tokens,
      layers: routing.layers,
      k: routing.k,
      sources: routing.rank ? "ranks" : "spread",
    },
    placement: dispatchSummary(routing, placement, shape),
    ...(previous ? { previous: dispatchSummary(routing, previous, shape) } : {}),
  };
}

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
  const out: HierarchyMetrics = { ...price, bound: price.bound.map(r6) };
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

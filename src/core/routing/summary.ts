import type { Placement } from "../model/placement.js";
import type { ClusterShape } from "../model/topology.js";
import { dispatchStats } from "./dispatch.js";
import type { Routing } from "./routing.js";

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
  for (let i = 0; i < n; i++)
    traffic.push(Array.from(s.traffic.subarray(i * n, (i + 1) * n), round6));
  return {
    remoteNodesPerToken: round6(s.remoteNodesPerToken),
    perLayer: Array.from(s.perLayer, round6),
    crossNodeShare: round6(s.crossNodeShare),
    traffic,
  };
}

/**
 * Six significant digits: the JSON figures stay short and the same bytes on every run.
 *
 * @example
 * ```ts
 * round6(0.123456789); // 0.123457
 * ```
 */
export const round6 = (x: number): number => Number(x.toPrecision(6));

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

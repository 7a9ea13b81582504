import { type LoadedLayer, layerMaxGpuLoad } from "../evaluation/layer-load.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import { createPlacement, type Placement } from "../model/placement.js";
import { localityOf, type Topology } from "../model/topology.js";
import { coActivationGraph, layerCoActivation } from "../routing/coactivation.js";
import {
  createDispatchWorkspace,
  type DispatchWorkspace,
  layerRemoteNodes,
  maskWords,
  nodeMasks,
} from "../routing/dispatch.js";
import type { Routing } from "../routing/routing.js";
import { type BalancedOptions, planBalanced } from "./balanced.js";
import { localizeCounts } from "./locality-counts.js";
import { LocalitySearch } from "./locality-search.js";

/** Options of locality-aware placement (fields of `rebalanceExperts`' options). */
export interface LocalityOptions {
  /**
   * How far above the plan's max GPU load (per layer, relative) the locality search may go;
   * default {@link DEFAULT_LOCALITY_TOLERANCE}.
   */
  localityTolerance?: number;
  /** Hierarchical topologies: whether replicas beyond each expert's first may leave its group's node. */
  relaxedHierarchy?: boolean;
}

/** Default `localityTolerance`: the target's balancedness (within 1%) holds on held-out tokens. */
export const DEFAULT_LOCALITY_TOLERANCE = 0.005;

/** Tokens per layer the co-activation statistics count at most (evenly spaced). */
export const COACTIVATION_TOKENS = 16384;

/** ... and over all layers at most (tokens x layers), so a large model's plan stays within a second. */
export const COACTIVATION_TOKEN_LAYERS = 250_000;

/** Co-activation partners kept per expert (its strongest pairs). */
export const COACTIVATION_NEIGHBORS = 16;

/**
 * Tokens (evenly spaced) on which each layer's result is checked against the starting plan by
 * the exact dispatch rule; the layer keeps whichever sends fewer remote nodes per token.
 */
export const CHECK_TOKENS = 2048;

/** The search's work budget per layer, in neighbour visits per slot. */
export const LOCALITY_WORK_PER_SLOT = 5000;

/** ... and per layer at most, so a large model's plan stays within a second. */
export const LOCALITY_WORK_PER_LAYER = 1_200_000;

/**
 * Checks `localityTolerance`.
 *
 * @param value the option's value
 * @returns the tolerance, the default when undefined
 * @throws {EplbInputError} when it is not a finite number in [0, 1]
 * @example
 * ```ts
 * localityTolerance(undefined); // 0.005
 * localityTolerance(-1); // throws: localityTolerance (-1) must be a finite number in [0, 1]
 * ```
 */
export function localityTolerance(value: unknown): number {
  if (value === undefined) return DEFAULT_LOCALITY_TOLERANCE;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new EplbInputError("localityTolerance", value, "must be a finite number in [0, 1]");
  }
  return value;
}

export function checkRouting(routing: Routing, loads: LoadMatrix, topology: Topology): void {
  if (routing.layers !== loads.layers) {
    throw new EplbInputError(
      "routing.layers",
      routing.layers,
      `must equal the loads' layers (${loads.layers})`,
    );
  }
  if (routing.experts !== topology.numExperts) {
    throw new EplbInputError(
      "routing.experts",
      routing.experts,
      `must equal the loads' experts (${topology.numExperts})`,
    );
  }
}

/**
 * Every `ceil(tokens / max)`-th token of `routing` (all of them up to `max`), as a routing.
 * Sampled tokens without a rank get one
 * on each node in turn: spread over the nodes as the rule spreads them, at one source per token
 * instead of `numNodes`, which is enough to compare two plans on the same tokens.
 */
export function sampleTokens(routing: Routing, max: number, topology: Topology): Routing {
  // A small routing is checked whole, every source included: the check is then exact.
  if (routing.tokens <= max) return routing;
  const stride = Math.ceil(routing.tokens / max);
  const per = routing.layers * routing.k;
  const tokens = Math.ceil(routing.tokens / stride);
  const topk = new Int32Array(tokens * per);
  const rank = new Int32Array(tokens);
  for (let i = 0; i < tokens; i++) {
    const t = i * stride;
    topk.set(routing.topk.subarray(t * per, (t + 1) * per), i * per);
    rank[i] = routing.rank ? routing.rank[t] : (i % topology.numNodes) * topology.gpusPerNode;
  }
  return { ...routing, tokens, topk, rank };
}

/** The exact dispatch rule on a token sample, to compare two plans of a layer. */
class LayerCheck {
  readonly masks: Uint32Array;
  readonly ws: DispatchWorkspace;
  constructor(
    readonly routing: Routing,
    readonly topology: Topology,
  ) {
    this.masks = new Uint32Array(topology.numExperts * maskWords(topology.numNodes));
    this.ws = createDispatchWorkspace(routing.k, topology.numNodes);
  }
  remote(p: Placement, layer: number): number {
    const t = this.topology;
    nodeMasks(p, layer, t, this.masks);
    return layerRemoteNodes(this.routing, layer, this.masks, t.gpusPerNode, this.ws).remoteNodes;
  }
}

/** Whether `candidate`'s layer sends fewer remote nodes per token than `base`'s (on the sample). */
function fewerRemoteNodes(
  check: LayerCheck,
  candidate: Placement,
  base: Placement,
  layer: number,
  _topology: Topology,
): boolean {
  return check.remote(candidate, layer) < check.remote(base, layer);
}

/** Per expert, its group's home node in the layer: the node serving most of the group's load. */
function homeNodes(
  loads: LoadMatrix,
  base: Placement,
  layer: number,
  topology: Topology,
  home: Int32Array,
): void {
  const { numExperts: E, numReplicas: P, numNodes: N, numGroups, slotsPerNode } = topology;
  const gs = E / numGroups;
  const served = new Float64Array(numGroups * N);
  for (let s = 0; s < P; s++) {
    const e = base.phy2log[layer * P + s];
    const share = loads.data[layer * E + e] / base.logcnt[layer * E + e];
    served[Math.floor(e / gs) * N + Math.floor(s / slotsPerNode)] += share;
  }
  for (let g = 0; g < numGroups; g++) {
    let best = 0;
    for (let n = 1; n < N; n++) if (served[g * N + n] > served[g * N + best]) best = n;
    for (let e = g * gs; e < (g + 1) * gs; e++) home[e] = best;
  }
}

/**
 * Tokens per layer the co-activation statistics count, for a model of `layers` layers.
 *
 * @param layers the model's layers
 * @returns the tokens per layer
 * @example
 * ```ts
 * coActivationTokens(4); // 16384
 * coActivationTokens(60); // 4166
 * ```
 */
export function coActivationTokens(layers: number): number {
  return Math.min(
    COACTIVATION_TOKENS,
    Math.max(1024, Math.floor(COACTIVATION_TOKEN_LAYERS / layers)),
  );
}

/**
 * Writes layer `l`'s slots into `out`, replica ranks in slot order.
 *
 * @param out the placement to write
 * @param l the layer
 * @param phy the layer's slots
 * @param ranks scratch, one entry per expert
 * @example
 * ```ts
 * const out = createPlacement(1, 3, 2);
 * writeLayer(out, 0, new Int32Array([1, 0, 1]), new Int32Array(2));
 * out.replicaRank; // Int32Array [0, 0, 1]
 * ```
 */
export function writeLayer(out: Placement, l: number, phy: Int32Array, ranks: Int32Array): void {
  const P = out.numReplicas;
  ranks.fill(0);
  for (let s = 0; s < P; s++) {
    const e = phy[s];
    out.phy2log[l * P + s] = e;
    out.replicaRank[l * P + s] = ranks[e]++;
  }
}

/**
 * Moves replicas of `base` between nodes so that experts the routing's tokens choose together
 * share nodes (fewer remote nodes per token under the dispatch rule of docs/locality.md),
 * keeping every layer's max GPU load within `localityTolerance` of `base`'s; a count pass
 * (`localizeCounts`) may then give a replica slot to another expert. Global topologies and relaxed hierarchies (each expert keeps a replica on its group's
 * home node) are searched; under a strict hierarchy every replica of a group stays on its
 * group's node, which already fixes each expert's node, so `base` is returned unchanged, as with
 * one node.
 *
 * @param loads the loads `base` was planned for
 * @param base a complete plan of `loads` on `topology`
 * @param topology the cluster shape
 * @param routing per-token top-k of the same layers and experts
 * @param options `localityTolerance`, `relaxedHierarchy`
 * @returns a new placement (or `base` when nothing can move)
 * @throws {EplbInputError} when the routing's layers or experts differ from the loads', the
 *   tolerance is invalid
 * @example
 * ```ts
 * // 2 nodes x 1 GPU x 2 slots; tokens choose {0, 1} and {2, 3}, which the plan splits
 * const t = makeTopology(4, 4, 1, 2, 2);
 * const loads = toLoadMatrix([[5, 5, 5, 5]]);
 * const routing = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 4,
 *   topk: new Int32Array([0, 1, 2, 3]), rank: null });
 * const p = localizePlacement(loads, placementFromPhy2log([[0, 2, 1, 3]], 4), t, routing);
 * p.phy2log; // Int32Array [3, 2, 1, 0]: {2, 3} on node 0, {0, 1} on node 1
 * // remote nodes per token 1 -> 0.5, max GPU load 10 both
 * ```
 */
export function localizePlacement(
  loads: LoadMatrix,
  base: Placement,
  topology: Topology,
  routing: Routing,
  options: LocalityOptions = {},
): Placement {
  const tolerance = localityTolerance(options.localityTolerance);
  checkRouting(routing, loads, topology);
  const locality = localityOf(topology, options.relaxedHierarchy);
  if (topology.numNodes < 2 || locality === "strict") return base;
  const { numExperts: E, numReplicas: P } = topology;
  const out = createPlacement(base.layers, P, E);
  out.logcnt.set(base.logcnt);
  const search = new LocalitySearch(topology);
  // Counts stay below 2^16 (at most COACTIVATION_TOKENS tokens are counted).
  const scratch = new Uint16Array(E * E);
  const home = locality === "relaxed" ? new Int32Array(E) : null;
  const ranks = new Int32Array(E);
  const statTokens = coActivationTokens(base.layers);
  const check = new LayerCheck(sampleTokens(routing, CHECK_TOKENS, topology), topology);
  for (let l = 0; l < base.layers; l++) {
    const phy = base.phy2log.subarray(l * P, (l + 1) * P);
    const cnt = base.logcnt.subarray(l * E, (l + 1) * E);
    const max = layerMaxGpuLoad(layerOf(loads, base, l, topology), topology);
    if (home) homeNodes(loads, base, l, topology, home);
    const graph = coActivationGraph(
      layerCoActivation(routing, l, statTokens, scratch),
      COACTIVATION_NEIGHBORS,
    );
    search.run(
      { loads: loads.data, loadOffset: l * E, phy, cnt },
      graph,
      max * (1 + tolerance),
      home,
      Math.min(LOCALITY_WORK_PER_LAYER, LOCALITY_WORK_PER_SLOT * P),
    );
    writeLayer(out, l, search.phy, ranks);
    if (search.moves > 0 && !fewerRemoteNodes(check, out, base, l, topology)) {
      out.phy2log.set(phy, l * P);
      out.replicaRank.set(base.replicaRank.subarray(l * P, (l + 1) * P), l * P);
    }
    localizeCounts(loads, out, l, graph, max * (1 + tolerance), home, check, topology);
  }
  return out;
}

/**
 * Layer `l` of `loads` and `placement` as the max-GPU-load kernel reads it.
 *
 * @param loads the loads
 * @param placement a placement of the same layers
 * @param l the layer
 * @param topology the cluster shape
 * @returns the layer's loads, slots and counts
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 1, 2);
 * const p = placementFromPhy2log([[1, 0, 1, 2]], 3);
 * layerMaxGpuLoad(layerOf(toLoadMatrix([[10, 40, 20]]), p, 0, t), t); // 40: GPU 1 holds 20 + 20
 * ```
 */
export function layerOf(
  loads: LoadMatrix,
  placement: Placement,
  l: number,
  topology: Topology,
): LoadedLayer {
  const { numExperts: E, numReplicas: P } = topology;
  return {
    loads: loads.data,
    loadOffset: l * E,
    phy2log: placement.phy2log,
    slotOffset: l * P,
    logcnt: placement.logcnt,
    expertOffset: l * E,
  };
}

/**
 * The balanced policy's plan made local: {@link planBalanced}, then {@link localizePlacement}
 * with the routing.
 *
 * @param loads load per (layer, expert)
 * @param topology the cluster shape
 * @param routing per-token top-k of the same layers and experts
 * @param options the balanced policy's options and `localityTolerance`
 * @returns the placement
 * @throws {EplbInputError} as {@link localizePlacement}
 * @example
 * ```ts
 * const routing = synthesizeRouting({ tokens: 4000, layers: 1, experts: 16, k: 4, seed: 1 });
 * const loads = toLoadMatrix([Array.from({ length: 16 }, (_, e) => 100 + e)]);
 * const p = planWithRouting(loads, makeTopology(16, 20, 1, 4, 4), routing);
 * dispatchStats(routing, p, { numGpus: 4, numNodes: 4 }).remoteNodesPerToken; // below planBalanced's
 * ```
 */
export function planWithRouting(
  loads: LoadMatrix,
  topology: Topology,
  routing: Routing,
  options: BalancedOptions & LocalityOptions = {},
): Placement {
  return localizePlacement(
    loads,
    planBalanced(loads, topology, options),
    topology,
    routing,
    options,
  );
}

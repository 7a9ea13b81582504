import { DuplicateDropWorkspace, dropFreeLayerDuplicates } from "../blocks/distinct.js";
import { type LayerPlanner, type LayerView, planLayers } from "../blocks/layers.js";
import { packGroupsToNodes } from "../blocks/locality.js";
import { layerMaxGpuLoad } from "../evaluation/layer-load.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import { localityOf, type Topology } from "../model/topology.js";
import { planRelaxed, planStrict, polishDeepseek, rescuable } from "./balanced-scopes.js";
import { BalancedWorkspace, type LayerSource } from "./balanced-workspace.js";
import { planHierarchicalLayer, referenceShape } from "./deepseek.js";
import type { Policy, PolicyOptions } from "./policy.js";

/** Options of the balanced policy (fields of `rebalanceExperts`' options). */
export interface BalancedOptions {
  /**
   * Hierarchical topologies only: let redundant replicas leave their group's node when that
   * lowers the max GPU load (each expert keeps one replica on its group's node). Default false:
   * every replica of a group stays on its group's node, as in the reference.
   */
  relaxedHierarchy?: boolean;
  /**
   * Stop improving a layer once its max GPU load is within this relative distance of the lower
   * bound. Default 1e-4.
   */
  epsilon?: number;
}

/** Default relative distance to the lower bound at which the search stops. */
export const DEFAULT_EPSILON = 1e-4;

export { layerWorkBudget } from "./balanced-scopes.js";
export { BalancedWorkspace, type LayerSource } from "./balanced-workspace.js";

/** Max GPU load of the candidate `phy` / `cnt` (layer-local) under the layer's loads. */
function candidateMax(
  ws: BalancedWorkspace,
  layer: LayerView,
  phy: Int32Array,
  cnt: Int32Array,
): number {
  const v = ws.candidateView;
  v.loads = layer.loads;
  v.loadOffset = layer.loadOffset;
  v.phy2log = phy;
  v.logcnt = cnt;
  return layerMaxGpuLoad(v, ws.topology);
}

/**
 * One layer of the `balanced` policy. Writes the layer's slots into `phy2log` / `replicaRank` at
 * `slotOffset` and counts into `logcnt` at `expertOffset` (the same contract as
 * {@link planHierarchicalLayer}) and returns the layer's max GPU load.
 *
 * - Global topologies: one scope of all experts and GPUs.
 * - Hierarchical (`numGroups % numNodes == 0`): groups go to nodes by {@link packGroupsToNodes}
 *   (exact for small group counts), then each node is one scope; every replica of a group stays
 *   on its group's node. With `relaxedHierarchy`, a second candidate keeps only one replica of
 *   each expert on its home node and places the rest anywhere.
 * - Each scope: water-filling counts, packing largest-first without duplicate replicas on a GPU,
 *   pairwise-swap refinement of the hottest GPU, then (if a gap to the lower bound remains) a
 *   joint search of replica counts and packing.
 * - The reference's own plan of the layer (polished by swaps when it wins) is a candidate too, so
 *   the result is never worse than the `deepseek` policy's. The relaxed candidate wins only where
 *   it beats the strict result (the balanced plan, or the reference's where that is better), so
 *   `relaxedHierarchy` never gives a worse layer than the strict contract.
 *
 * Deterministic: same loads, same plan.
 *
 * @example
 * ```ts
 * const t = makeTopology(8, 16, 1, 1, 8);
 * const ws = new BalancedWorkspace(t);
 * const phy = new Int32Array(16), rank = new Int32Array(16), cnt = new Int32Array(8);
 * const loads = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
 * const layer = { loads, loadOffset: 0, phy2log: phy, replicaRank: rank, slotOffset: 0, logcnt: cnt, expertOffset: 0 };
 * planBalancedLayer(layer, ws); // 196.666... (the reference: 232)
 * ```
 */
export function planBalancedLayer(
  layer: LayerView,
  ws: BalancedWorkspace,
  options: BalancedOptions = {},
): number {
  const { loads, loadOffset } = layer;
  const t = ws.topology;
  const { numNodes } = t;
  const epsilon = options.epsilon ?? DEFAULT_EPSILON;
  const dsShape = referenceShape(t);
  planHierarchicalLayer(
    loads,
    loadOffset,
    dsShape,
    ws.dsPhy,
    ws.dsRank,
    0,
    ws.dsCnt,
    0,
    ws.deepseek,
  );
  const dsMax = candidateMax(ws, layer, ws.dsPhy, ws.dsCnt);
  ws.hotCeiling = dsMax;

  const hierarchical = t.hierarchical && numNodes > 1;
  planStrict(ws, loads, loadOffset, epsilon, 0);
  let strictMax = candidateMax(ws, layer, ws.candPhy, ws.candCnt);
  let relaxedMax = Number.POSITIVE_INFINITY;
  if (hierarchical && localityOf(t, options.relaxedHierarchy) === "relaxed" && strictMax > 0) {
    planRelaxed(ws, loads, loadOffset, epsilon);
    relaxedMax = candidateMax(ws, layer, ws.relaxPhy, ws.relaxCnt);
  }
  // The strict policy's result first, whatever the mode: the relaxed plan is taken only where it
  // beats that, so relaxing the contract never costs balance.
  if (dsMax < strictMax && rescuable(ws, dsMax)) {
    // The reference's plan won (usually through a duplicate replica): search the strict scopes
    // above it harder before giving in.
    planStrict(ws, loads, loadOffset, epsilon, dsMax);
    strictMax = candidateMax(ws, layer, ws.candPhy, ws.candCnt);
  }
  let bestMax = strictMax;
  let phy = ws.candPhy;
  let cnt = ws.candCnt;
  let source: LayerSource = "balanced";
  if (dsMax < bestMax) {
    polishDeepseek(ws, loads, loadOffset);
    const polished = candidateMax(ws, layer, ws.dsPhy, ws.dsCnt);
    // Polishing never raises the max; the guard keeps the guarantee exact in float64.
    if (polished > dsMax) {
      planHierarchicalLayer(
        loads,
        loadOffset,
        dsShape,
        ws.dsPhy,
        ws.dsRank,
        0,
        ws.dsCnt,
        0,
        ws.deepseek,
      );
    }
    bestMax = Math.min(polished, dsMax);
    phy = ws.dsPhy;
    cnt = ws.dsCnt;
    source = "deepseek";
  }
  ws.strictSource = source;
  // The relaxed plan must beat the strict result by more than rounding to be worth its traffic.
  if (relaxedMax < bestMax * (1 - 1e-9)) {
    bestMax = relaxedMax;
    phy = ws.relaxPhy;
    cnt = ws.relaxCnt;
    source = "relaxed";
  }
  ws.lastSource = source;
  writeCandidate(layer, ws, phy, cnt);
  return bestMax;
}

/** Writes a candidate's slots, replica ranks (in slot order) and counts into the layer. */
function writeCandidate(layer: LayerView, ws: BalancedWorkspace, phy: Int32Array, cnt: Int32Array) {
  const { numReplicas: P, numExperts: E } = ws.topology;
  const { phy2log, replicaRank, logcnt, slotOffset, expertOffset } = layer;
  const ranks = ws.rankCounter.fill(0);
  for (let s = 0; s < P; s++) {
    const e = phy[s];
    phy2log[slotOffset + s] = e;
    replicaRank[slotOffset + s] = ranks[e]++;
  }
  logcnt.set(cnt.subarray(0, E), expertOffset);
}

/**
 * The balanced policy's per-layer planner for `topology`: {@link planBalancedLayer} over a
 * workspace of its own, for {@link planLayers}.
 *
 * @param topology - the cluster shape
 * @param options - the balanced policy's options
 * @returns a planner of one layer
 * @example
 * ```ts
 * const t = makeTopology(8, 16, 1, 1, 8);
 * const loads = toLoadMatrix([[600, 560, 120, 120, 20, 10, 10, 10]]);
 * planLayers(loads, t, balancedLayerPlanner(t)); // the same placement as planBalanced(loads, t)
 * ```
 */
export function balancedLayerPlanner(
  topology: Topology,
  options: BalancedOptions = {},
): LayerPlanner {
  const ws = new BalancedWorkspace(topology);
  const drop = new DuplicateDropWorkspace(topology);
  const { numReplicas: P, numExperts: E } = topology;
  const relaxed = { phy: new Int32Array(P), rank: new Int32Array(P), cnt: new Int32Array(E) };
  return (layer) => {
    const max = planBalancedLayer(layer, ws, options);
    // The deepseek candidate can win a layer with a second replica of an expert on one GPU;
    // where an exchange removes it without raising the layer's max, take the exchange.
    dropFreeLayerDuplicates(layer, drop);
    if (ws.lastSource !== "relaxed") return max;
    // Removing duplicates can lower a strict plan below the relaxed one that beat it: compare
    // the two as they are written, so relaxing the contract never costs balance.
    const { phy2log, replicaRank, logcnt, slotOffset: so, expertOffset: eo } = layer;
    const relaxedMax = layerMaxGpuLoad(layer, topology);
    relaxed.phy.set(phy2log.subarray(so, so + P));
    relaxed.rank.set(replicaRank.subarray(so, so + P));
    relaxed.cnt.set(logcnt.subarray(eo, eo + E));
    const fromReference = ws.strictSource === "deepseek";
    writeCandidate(
      layer,
      ws,
      fromReference ? ws.dsPhy : ws.candPhy,
      fromReference ? ws.dsCnt : ws.candCnt,
    );
    dropFreeLayerDuplicates(layer, drop);
    const strictMax = layerMaxGpuLoad(layer, topology);
    if (relaxedMax < strictMax * (1 - 1e-9)) {
      phy2log.set(relaxed.phy, so);
      replicaRank.set(relaxed.rank, so);
      logcnt.set(relaxed.cnt, eo);
      return max;
    }
    ws.lastSource = ws.strictSource;
    return strictMax;
  };
}

/**
 * Plans every layer with {@link planBalancedLayer}.
 *
 * @example
 * ```ts
 * const t = makeTopology(8, 16, 1, 1, 8);
 * const loads = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
 * const p = planBalanced({ layers: 1, experts: 8, data: loads }, t);
 * // p.logcnt = [4, 3, 1, 3, 1, 2, 1, 1], p.phy2log = [1, 7, 1, 5, 1, 5, 0, 3, 0, 3, 0, 4, 0, 6, 2, 3]
 * // max GPU load 196.67 (560/3 + 10), the optimum; planDeepseek gives 232
 * ```
 */
export function planBalanced(
  loads: LoadMatrix,
  topology: Topology,
  options: BalancedOptions = {},
): Placement {
  return planLayers(loads, topology, balancedLayerPlanner(topology, options));
}

/**
 * Reads and checks the balanced policy's fields of `rebalanceExperts` options.
 *
 * @example
 * ```ts
 * balancedOptions({ relaxedHierarchy: true }); // { relaxedHierarchy: true }
 * balancedOptions({ epsilon: -1 }); // throws: epsilon (-1) must be a finite number >= 0
 * ```
 */
export function balancedOptions(options: BalancedOptions & PolicyOptions): BalancedOptions {
  const out: BalancedOptions = {};
  // Read as unknown: JavaScript callers and parsed files may pass any value.
  const { relaxedHierarchy, epsilon } = options as Record<string, unknown>;
  if (relaxedHierarchy !== undefined) {
    if (typeof relaxedHierarchy !== "boolean") {
      throw new EplbInputError("relaxedHierarchy", relaxedHierarchy, "must be true or false");
    }
    out.relaxedHierarchy = relaxedHierarchy;
  }
  if (epsilon !== undefined) {
    if (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon < 0) {
      throw new EplbInputError("epsilon", epsilon, "must be a finite number >= 0");
    }
    out.epsilon = epsilon;
  }
  return out;
}

/** The `balanced` policy: near-optimal, never worse than `deepseek` on any layer. */
export const balancedPolicy: Policy<BalancedOptions> = {
  name: "balanced",
  description:
    "near-optimal (joint replica counts and packing, swap refinement); never worse than deepseek on any layer; no duplicate replica on a GPU unless removing it costs balance",
  options: ["relaxedHierarchy", "epsilon"],
  plan: (loads, topology, options) => planBalanced(loads, topology, balancedOptions(options)),
  layerPlanner: (topology, options) => balancedLayerPlanner(topology, balancedOptions(options)),
};

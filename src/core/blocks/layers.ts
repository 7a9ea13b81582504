import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import { createPlacement, type Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";

/**
 * One layer as a policy sees it: where its loads start in a flat loads array and where its slots
 * (`phy2log`, `replicaRank`) and replica counts (`logcnt`) go in flat placement arrays. The
 * driver reuses one view for every layer (it only moves the offsets), so a planner must not keep
 * it beyond the call.
 */
export interface LayerView {
  /** Flat loads; the layer's experts are `loads[loadOffset .. loadOffset + numExperts)`. */
  loads: Float64Array;
  loadOffset: number;
  /** Flat slots; the layer's are `[slotOffset .. slotOffset + numReplicas)`. */
  phy2log: Int32Array;
  replicaRank: Int32Array;
  slotOffset: number;
  /** Flat replica counts; the layer's are `[expertOffset .. expertOffset + numExperts)`. */
  logcnt: Int32Array;
  expertOffset: number;
}

/** Plans one layer into its view's slots and counts (a return value, if any, is ignored). */
export type LayerPlanner = (layer: LayerView) => unknown;

/** Which layers {@link planLayers} plans: `[from, to)`, by default all of them. */
export interface LayerRange {
  from?: number;
  to?: number;
}

/**
 * The view of layer `layer` of `loads` and `placement` (written into `view` when given, so a loop
 * allocates nothing).
 *
 * @param loads - the model's loads, `[layers][experts]`
 * @param placement - the placement the layer's slots and counts belong to
 * @param layer - the layer's index
 * @param view - a view to overwrite instead of allocating one
 * @returns the view of the layer
 * @example
 * ```ts
 * const loads = { layers: 2, experts: 4, data: new Float64Array(8) };
 * layerView(loads, createPlacement(2, 6, 4), 1).slotOffset; // 6
 * ```
 */
export function layerView(
  loads: LoadMatrix,
  placement: Placement,
  layer: number,
  view?: LayerView,
): LayerView {
  const E = placement.numExperts;
  const P = placement.numReplicas;
  const v = view ?? {
    loads: loads.data,
    loadOffset: 0,
    phy2log: placement.phy2log,
    replicaRank: placement.replicaRank,
    slotOffset: 0,
    logcnt: placement.logcnt,
    expertOffset: 0,
  };
  v.loads = loads.data;
  v.loadOffset = layer * loads.experts;
  v.phy2log = placement.phy2log;
  v.replicaRank = placement.replicaRank;
  v.slotOffset = layer * P;
  v.logcnt = placement.logcnt;
  v.expertOffset = layer * E;
  return v;
}

/**
 * The one loop that runs a per-layer planner over a model's layers: every policy's whole-model
 * plan, and what a worker thread runs on its share of the layers (`range`, written into `out`).
 *
 * @param loads - the model's loads, `[layers][experts]` with `experts == topology.numExperts`
 * @param topology - the cluster shape
 * @param planLayer - plans one layer from its view
 * @param out - the placement to write into (default: a new one for every layer)
 * @param range - the layers to plan, `[from, to)`; default all
 * @returns `out`
 * @throws {EplbInputError} when `range` is not within `[0, loads.layers]` or `out` has another
 *   shape than `loads` and `topology`
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 1, 1, 2);
 * const ws = new DeepseekWorkspace(referenceShape(t));
 * const loads = { layers: 1, experts: 4, data: new Float64Array([10, 40, 20, 30]) };
 * planLayers(loads, t, (v) => planHierarchicalLayer(v.loads, v.loadOffset, referenceShape(t),
 *   v.phy2log, v.replicaRank, v.slotOffset, v.logcnt, v.expertOffset, ws)).phy2log;
 * // Int32Array [1, 1, 0, 2, 3, 3]
 * ```
 */
export function planLayers(
  loads: LoadMatrix,
  topology: Topology,
  planLayer: LayerPlanner,
  out: Placement = createPlacement(loads.layers, topology.numReplicas, topology.numExperts),
  range: LayerRange = {},
): Placement {
  const from = range.from ?? 0;
  const to = range.to ?? loads.layers;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from) {
    throw new EplbInputError("range", `${from}..${to}`, "must be integers with 0 <= from <= to");
  }
  if (to > loads.layers || to > out.layers) {
    throw new EplbInputError(
      "range.to",
      to,
      `must be at most the number of layers (${loads.layers})`,
    );
  }
  if (out.numExperts !== topology.numExperts || out.numReplicas !== topology.numReplicas) {
    throw new EplbInputError(
      "out",
      `${out.numExperts} experts, ${out.numReplicas} slots`,
      `must match the topology (${topology.numExperts} experts, ${topology.numReplicas} slots)`,
    );
  }
  const view = layerView(loads, out, from);
  for (let l = from; l < to; l++) {
    layerView(loads, out, l, view);
    planLayer(view);
  }
  return out;
}

// The gate that knows the price (docs/simulate.md, "The gate"): a rebalance, or a layer of it,
// goes ahead only if the MoE time it is expected to save pays for its transfers. Kept outside
// core/migration: it judges the migration's result, whatever made it.
import { planTransfers } from "../evaluation/transfers.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import type { CostModel } from "./model.js";
import { layerMoeUs, layerTransfers, transferPlanMs } from "./price.js";

/**
 * The gate's default horizon in intervals: a layer's change is expected to save MoE time over
 * three intervals, not one, since a rebalance from the previous placement keeps it until a later
 * one changes it again (docs/simulate.md, "The gate", measures 1, 3 and 10).
 */
export const DEFAULT_GATE_INTERVALS = 3;

/**
 * The steps over which the gate counts a change's saving: `intervals` (default
 * {@link DEFAULT_GATE_INTERVALS}) rebalancing intervals.
 *
 * @param interval steps between rebalances
 * @param intervals the horizon in intervals
 * @returns steps
 * @throws {EplbInputError} when `intervals` is not a finite number > 0
 * @example
 * ```ts
 * gateHorizonSteps(100); // 300
 * gateHorizonSteps(100, 1); // 100
 * gateHorizonSteps(100, 0); // throws EplbInputError: costGateIntervals (0) must be a finite number > 0
 * ```
 */
export function gateHorizonSteps(interval: number, intervals = DEFAULT_GATE_INTERVALS): number {
  if (!(typeof intervals === "number" && Number.isFinite(intervals) && intervals > 0)) {
    throw new EplbInputError("costGateIntervals", intervals, "must be a finite number > 0");
  }
  return interval * intervals;
}

/** What {@link gateRebalance} decided. */
export interface GateDecision {
  /** The placement to adopt: `next` with the layers that do not pay put back, or `previous`. */
  placement: Placement;
  /** Layers `next` changed that the gate kept on their previous placement. */
  skippedLayers: number;
  /** Whether the whole rebalance was skipped (`placement` is `previous`). */
  skipped: boolean;
  /** The stall of the transfers to `placement` (0 when skipped), so the caller need not schedule them again. */
  stallMs: number;
}

function copyLayer(from: Placement, to: Placement, l: number): void {
  const P = from.numReplicas;
  const E = from.numExperts;
  to.phy2log.set(from.phy2log.subarray(l * P, (l + 1) * P), l * P);
  to.replicaRank.set(from.replicaRank.subarray(l * P, (l + 1) * P), l * P);
  to.logcnt.set(from.logcnt.subarray(l * E, (l + 1) * E), l * E);
}

/**
 * Keeps the previous placement where a rebalance does not pay. Per layer that `next` changes,
 * the MoE time it saves is `steps` times the drop of the layer's MoE time
 * on the estimate (per step: the busiest GPU's `tokenUs * load + expertLoadUs * distinct
 * experts`, {@link layerMoeUs}); a layer saving less than its own transfers take (scheduled
 * alone) keeps its previous placement. Then the whole rebalance is skipped if what the kept
 * layers save together is less than their transfers take scheduled together.
 *
 * @param previous the placement in force
 * @param next the placement the policy proposes (same shape)
 * @param estimate the estimated loads per step the policy planned on (`[layers][experts]`)
 * @param topology the cluster
 * @param model the prices
 * @param steps steps over which a change saves (the simulator's {@link gateHorizonSteps})
 * @returns the placement to adopt and what was skipped
 * @example
 * ```ts
 * const t = makeTopology(2, 2, 1, 1, 2);
 * const slowLinks = makeCostModel({ expertBytes: 1e9, intraGbps: 1, interGbps: 1, tokenUs: 1 });
 * const d = gateRebalance(placementFromPhy2log([[0, 1]], 2), placementFromPhy2log([[1, 0]], 2),
 *   toLoadMatrix([[5, 1]]), t, slowLinks, 10);
 * d.skipped; // true: swapping saves nothing and takes 16 s
 * ```
 */
export function gateRebalance(
  previous: Placement,
  next: Placement,
  estimate: LoadMatrix,
  topology: Topology,
  model: CostModel,
  steps: number,
): GateDecision {
  const { layers } = next;
  const E = topology.numExperts;
  const plan = planTransfers(previous, next, topology);
  let gated: Placement | null = null;
  let skippedLayers = 0;
  let changedLayers = 0;
  let savedMs = 0;
  for (let l = 0; l < layers; l++) {
    if (plan.layerOffsets[l + 1] === plan.layerOffsets[l]) continue;
    changedLayers++;
    const before = layerMoeUs(estimate.data, l * E, previous, l, topology, model);
    const after = layerMoeUs(estimate.data, l * E, next, l, topology, model);
    const saved = (steps * (before - after)) / 1e3;
    if (saved < transferPlanMs(layerTransfers(plan, l), topology, model)) {
      gated ??= {
        ...next,
        phy2log: next.phy2log.slice(),
        replicaRank: next.replicaRank.slice(),
        logcnt: next.logcnt.slice(),
      };
      copyLayer(previous, gated, l);
      skippedLayers++;
    } else savedMs += saved;
  }
  if (skippedLayers === changedLayers) {
    return { placement: previous, skippedLayers, skipped: changedLayers > 0, stallMs: 0 };
  }
  const placement = gated ?? next;
  const kept = gated ? planTransfers(previous, gated, topology) : plan;
  const stallMs = transferPlanMs(kept, topology, model);
  if (savedMs < stallMs) {
    return { placement: previous, skippedLayers: changedLayers, skipped: true, stallMs: 0 };
  }
  return { placement, skippedLayers, skipped: false, stallMs };
}

import {
  gpuTransferCounts,
  planTransfers,
  type TransferCounts,
  type TransferPlan,
} from "../evaluation/transfers.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { SMOOTHING } from "./options.js";

// What a migration reports: per layer and for the whole model, and the GPU-load measures (the
// largest and the smooth maximum) it is judged by.

/** What happened to one layer. */
export type LayerOutcome = "kept" | "gated" | "repaired" | "regrouped" | "relabelled";

/** The result of {@link migrateLayer}. */
export interface LayerMigration {
  /**
   * `kept`: no change found worth a move (or zero budget), unchanged; `gated`: the best change
   * found gained less than `minGain`, unchanged; `repaired`: the previous placement repaired by a
   * few moves; `regrouped`: one group traded between two nodes, then repaired (strict
   * hierarchical layers whose nodes drifted apart); `relabelled`: the fresh plan relabelled onto
   * the previous one.
   */
  outcome: LayerOutcome;
  /** Slots whose expert differs from the previous placement (`<= moveBudget`). */
  slotsChanged: number;
  /** Max GPU load of the previous placement under the new loads. */
  maxBefore: number;
  /** Max GPU load of the result. */
  maxAfter: number;
  /** Max GPU load of the fresh plan (`NaN` when none was given). */
  maxFresh: number;
  /** The max GPU load the first repair aimed for. */
  target: number;
  /** Smooth maximum GPU load ({@link smoothMaxGpuLoad}) of the previous placement and result. */
  smoothBefore: number;
  smoothAfter: number;
}

/** The smooth maximum of `load[0..n)` at temperature `tau`, given their largest value. */
export function smoothOf(load: ArrayLike<number>, n: number, max: number, tau: number): number {
  if (!(tau > 0)) return max;
  let sum = 0;
  for (let g = 0; g < n; g++) sum += Math.exp((load[g] - max) / tau);
  return max + tau * Math.log(sum);
}

/**
 * The smooth maximum GPU load of one layer of a placement: `tau * log(sum_g exp(L_g / tau))` with
 * `tau = smoothing * mean GPU load` ({@link SMOOTHING} by default). It lies between the largest
 * GPU load and that plus `tau * log(numGpus)`, and counts every GPU within a few `tau` of the
 * largest almost as much as the largest: a bound on the expected largest load when every GPU's
 * load varies by about `tau`, which is what the rebalancing from a previous placement minimises.
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * // GPU loads [8, 7], mean 7.5, tau 0.225: 8 + 0.225 * log(1 + exp(-1 / 0.225))
 * smoothMaxGpuLoad(new Float64Array([8, 4, 3]), 0, p.phy2log, 0, p.logcnt, 0, 2, 4); // 8.0026...
 * smoothMaxGpuLoad(new Float64Array([8, 4, 3]), 0, p.phy2log, 0, p.logcnt, 0, 2, 4, 0); // 8
 * ```
 */
export function smoothMaxGpuLoad(
  loads: Float64Array,
  loadOffset: number,
  phy2log: Int32Array,
  slotOffset: number,
  logcnt: Int32Array,
  countOffset: number,
  numGpus: number,
  numReplicas: number,
  smoothing = SMOOTHING,
): number {
  const S = numReplicas / numGpus;
  const gpu = new Float64Array(numGpus);
  let max = 0;
  let total = 0;
  for (let g = 0; g < numGpus; g++) {
    for (let j = 0; j < S; j++) {
      const e = phy2log[slotOffset + g * S + j];
      gpu[g] += loads[loadOffset + e] / logcnt[countOffset + e];
    }
    total += gpu[g];
    if (gpu[g] > max) max = gpu[g];
  }
  return smoothOf(gpu, numGpus, max, (smoothing * total) / numGpus);
}

/** Migration figures for a whole model. */
export interface MigrationMetrics {
  /** Resolved settings: slots per layer that may change, minimum gain, tolerance, slot gain. */
  moveBudget: number;
  minGain: number;
  tolerance: number;
  slotGain: number;
  /** Slots whose expert changed, over all layers. */
  slotsChanged: number;
  /** `slotsChanged / (layers * numReplicas)`. */
  slotsChangedShare: number;
  slotsChangedPerLayer: number[];
  /** Layers by outcome (see {@link LayerMigration}). */
  layersKept: number;
  layersGated: number;
  layersRepaired: number;
  layersRegrouped: number;
  layersRelabelled: number;
  /** Transfers by kind. */
  transfers: TransferCounts;
  /**
   * The most expert weights any one GPU copies in from other GPUs (same node or another), over
   * all layers: the busiest receiver bounds how long applying the rebalance takes.
   */
  maxGpuTransfersIn: number;
  /** The most expert weights other GPUs read from any one GPU, over all layers. */
  maxGpuTransfersOut: number;
  /** Per layer: max GPU load of the previous placement under the new loads. */
  maxLoadBefore: number[];
  /** Per layer: max GPU load of the result. */
  maxLoadAfter: number[];
  /** Per layer: max GPU load of the fresh plan from scratch. */
  maxLoadFresh: number[];
  /** Mean over layers of before / fresh max GPU load (1 for all-zero layers). */
  beforeOverFresh: number;
  /** Mean over layers of after / fresh max GPU load. */
  afterOverFresh: number;
  /** Worst layer's after / fresh. */
  worstAfterOverFresh: number;
  /** Slots the fresh plan changes as the policy returns it. */
  freshSlotsChanged: number;
  /**
   * Slots the fresh plan changes once relabelled onto the previous placement (`null` unless
   * `compareRelabelled` was set).
   */
  freshRelabelledSlotsChanged: number | null;
}

/** A whole model migrated: the placement, what it costs to get there and how good it is. */
export interface Migration {
  placement: Placement;
  metrics: MigrationMetrics;
  transfers: TransferPlan;
  layers: LayerMigration[];
}

/**
 * Plans the transfers from `given` to `placement` and writes what they cost into `metrics`:
 * counts by kind and the busiest GPU's copies in and out. The one place a migration's transfer
 * figures are made, so a step that changes the placement after the migration (locality) reports
 * them the same way.
 *
 * @param metrics the metrics to complete (`transfers`, `maxGpuTransfersIn`, `maxGpuTransfersOut`)
 * @param given the previous placement as given
 * @param placement the placement returned
 * @param topology the cluster shape
 * @returns the transfer plan
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 2, 2);
 * const m = { transfers: { local: 0, intraNode: 0, interNode: 0 }, maxGpuTransfersIn: 0, maxGpuTransfersOut: 0 };
 * recordTransfers(m, placementFromPhy2log([[0, 1, 2, 0]], 3), placementFromPhy2log([[0, 0, 2, 1]], 3), t);
 * m.transfers; // { local: 1, intraNode: 0, interNode: 1 }
 * m.maxGpuTransfersIn; // 1
 * ```
 */
export function recordTransfers(
  metrics: Pick<MigrationMetrics, "transfers" | "maxGpuTransfersIn" | "maxGpuTransfersOut">,
  given: Placement,
  placement: Placement,
  topology: Topology,
): TransferPlan {
  const transfers = planTransfers(given, placement, topology);
  metrics.transfers = {
    local: transfers.local,
    intraNode: transfers.intraNode,
    interNode: transfers.interNode,
  };
  const { remoteIn, remoteOut } = gpuTransferCounts(transfers, topology);
  metrics.maxGpuTransfersIn = Math.max(0, ...remoteIn);
  metrics.maxGpuTransfersOut = Math.max(0, ...remoteOut);
  return transfers;
}

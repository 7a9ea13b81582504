// The price of serving a step under a placement, in microseconds of MoE time: the core of
// `eplb simulate`'s pricing (docs/simulate.md, "Pricing"). A layer's MoE time is its busiest
// GPU's: tokenUs per (token, expert) pair it computes plus expertLoadUs per distinct expert it
// activates (memory-bound decode streams each activated expert's weights once); a step is its
// layers in sequence. The simulator runs the same arithmetic fused into its judging loop; these
// functions are the reference it is tested against and what the gate prices estimates with.
import { planTransfers, type TransferPlan } from "../evaluation/transfers.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import type { CostModel } from "./model.js";
import { scheduleTransfers } from "./schedule.js";

/**
 * Per slot, 1 when it is the first slot of its expert on its GPU (0 for a second replica of the
 * same expert on the same GPU, and for an empty slot): summing it over a GPU's slots whose
 * expert has load counts the distinct experts the GPU activates, once each.
 *
 * @param placement the placement (`phy2log` row-major `[layers][numReplicas]`)
 * @param slotsPerGpu slots per GPU (GPU `g` holds slots `g * S .. g * S + S - 1`)
 * @returns a mask laid out like `phy2log`
 * @example
 * ```ts
 * distinctSlotMask(placementFromPhy2log([[0, 0, 1, 0]], 2), 2); // Uint8Array [1, 0, 1, 1]
 * ```
 */
export function distinctSlotMask(placement: Placement, slotsPerGpu: number): Uint8Array {
  const { phy2log } = placement;
  const out = new Uint8Array(phy2log.length);
  for (let start = 0; start < phy2log.length; start += slotsPerGpu) {
    for (let s = start; s < start + slotsPerGpu; s++) {
      const e = phy2log[s];
      if (e < 0) continue;
      let first = 1;
      for (let o = start; o < s; o++) if (phy2log[o] === e) first = 0;
      out[s] = first;
    }
  }
  return out;
}

/**
 * One layer's MoE time under a placement: the largest over GPUs of `tokenUs * load +
 * expertLoadUs * distinct experts with load > 0`, each expert's load split evenly among its
 * replicas (as engines route tokens).
 *
 * @param loads per-expert loads of the layer: `loads[offset + e]`
 * @param offset where the layer's row starts in `loads`
 * @param placement the placement
 * @param layer the layer of `placement` to price
 * @param topology the cluster (its `numGpus` and `slotsPerGpu`)
 * @param model the prices (`tokenUs`, `expertLoadUs`)
 * @returns microseconds
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs: 2, expertLoadUs: 10 });
 * // GPU 0: expert 0 (load 8) and half of expert 1 (load 4 / 2); GPU 1: expert 2 and the other half.
 * layerMoeUs(new Float64Array([8, 4, 0]), 0, placementFromPhy2log([[0, 1, 2, 1]], 3), 0,
 *   makeTopology(3, 4, 1, 1, 2), m); // 40: GPU 0 2 * 10 + 10 * 2 experts; GPU 1 2 * 2 + 10 * 1
 * ```
 */
export function layerMoeUs(
  loads: ArrayLike<number>,
  offset: number,
  placement: Placement,
  layer: number,
  topology: Topology,
  model: CostModel,
): number {
  const { numGpus: G, slotsPerGpu: S, numReplicas: P, numExperts: E } = topology;
  const { phy2log, logcnt } = placement;
  let max = 0;
  for (let g = 0; g < G; g++) {
    let load = 0;
    let active = 0;
    for (let s = layer * P + g * S; s < layer * P + (g + 1) * S; s++) {
      const e = phy2log[s];
      if (e < 0) continue;
      const v = loads[offset + e];
      load += v / logcnt[layer * E + e];
      if (!(v > 0)) continue;
      let first = true;
      for (let o = layer * P + g * S; o < s; o++) if (phy2log[o] === e) first = false;
      if (first) active++;
    }
    const us = model.tokenUs * load + model.expertLoadUs * active;
    if (us > max) max = us;
  }
  return max;
}

/**
 * One layer's MoE time without EPLB: experts in order, GPU `g` holding experts
 * `floor(g * E / G) .. floor((g + 1) * E / G) - 1`, no replicas (the simulator's `none`).
 *
 * @param loads per-expert loads of the layer: `loads[offset + e]`
 * @param offset where the layer's row starts
 * @param experts experts per layer (`E`)
 * @param numGpus GPUs (`G`)
 * @param model the prices
 * @returns microseconds
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs: 1, expertLoadUs: 5 });
 * contiguousLayerMoeUs(new Float64Array([6, 0, 1, 1]), 0, 4, 2, m); // 12: GPU 0 6 + 5, GPU 1 2 + 2 * 5
 * ```
 */
export function contiguousLayerMoeUs(
  loads: ArrayLike<number>,
  offset: number,
  experts: number,
  numGpus: number,
  model: CostModel,
): number {
  let max = 0;
  for (let g = 0; g < numGpus; g++) {
    let load = 0;
    let active = 0;
    const to = Math.floor(((g + 1) * experts) / numGpus);
    for (let e = Math.floor((g * experts) / numGpus); e < to; e++) {
      const v = loads[offset + e];
      load += v;
      if (v > 0) active++;
    }
    const us = model.tokenUs * load + model.expertLoadUs * active;
    if (us > max) max = us;
  }
  return max;
}

/**
 * A step's MoE time: its layers' {@link layerMoeUs} in sequence, in milliseconds; with a null
 * placement, without EPLB ({@link contiguousLayerMoeUs}).
 *
 * @param step the step's loads, `[layers][experts]` row-major from `offset`
 * @param offset where the step starts in `step`
 * @param layers the step's layers
 * @param placement the placement in force, or null for no balancing
 * @param topology the cluster
 * @param model the prices
 * @returns milliseconds
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs: 1000 });
 * stepMoeMs(new Float64Array([3, 1]), 0, 1, null, makeTopology(2, 2, 1, 1, 2), m); // 3
 * ```
 */
export function stepMoeMs(
  step: ArrayLike<number>,
  offset: number,
  layers: number,
  placement: Placement | null,
  topology: Topology,
  model: CostModel,
): number {
  const E = topology.numExperts;
  let us = 0;
  for (let l = 0; l < layers; l++) {
    us += placement
      ? layerMoeUs(step, offset + l * E, placement, l, topology, model)
      : contiguousLayerMoeUs(step, offset + l * E, E, topology.numGpus, model);
  }
  return us / 1e3;
}

/**
 * The transfers of one layer of a plan, as a plan of their own (views, no copy): what the gate
 * prices a layer's change with.
 *
 * @param plan a transfer plan ({@link planTransfers})
 * @param layer the layer
 * @returns the layer's transfers (`layerOffsets` of the whole plan's layer count, all empty but `layer`)
 * @example
 * ```ts
 * const t = makeTopology(2, 2, 1, 1, 2);
 * const plan = planTransfers(placementFromPhy2log([[0, 1], [0, 1]], 2),
 *   placementFromPhy2log([[0, 1], [1, 0]], 2), t);
 * layerTransfers(plan, 1).count; // 2
 * layerTransfers(plan, 0).count; // 0
 * ```
 */
export function layerTransfers(plan: TransferPlan, layer: number): TransferPlan {
  const from = plan.layerOffsets[layer];
  const to = plan.layerOffsets[layer + 1];
  const layerOffsets = new Int32Array(plan.layerOffsets.length);
  layerOffsets.fill(to - from, layer + 1);
  const kind = plan.kind.subarray(from, to);
  const counts = [0, 0, 0];
  for (let i = 0; i < kind.length; i++) counts[kind[i]]++;
  return {
    count: to - from,
    layerOffsets,
    layer: plan.layer.subarray(from, to),
    expert: plan.expert.subarray(from, to),
    source: plan.source.subarray(from, to),
    destination: plan.destination.subarray(from, to),
    kind,
    local: counts[0],
    intraNode: counts[1],
    interNode: counts[2],
  };
}

/**
 * How long a transfer plan stalls serving: its schedule's total (rounds in which every GPU sends
 * and receives at most one expert, each round as long as its slowest copy; local copies free).
 *
 * @param plan the transfers
 * @param topology the cluster they run on
 * @param model the prices (bytes per expert, link bandwidths)
 * @returns milliseconds
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * const t = makeTopology(3, 4, 1, 2, 2);
 * transferPlanMs(planTransfers(placementFromPhy2log([[0, 1, 2, 0]], 3),
 *   placementFromPhy2log([[0, 0, 2, 1]], 3), t), t, m); // 1: one inter-node copy, one local
 * ```
 */
export function transferPlanMs(plan: TransferPlan, topology: Topology, model: CostModel): number {
  return plan.count === 0 ? 0 : scheduleTransfers(plan, topology, model).totalMs;
}

/**
 * A rebalance's stall: the transfers from `previous` to `next` ({@link planTransfers}),
 * scheduled ({@link transferPlanMs}).
 *
 * @param previous the placement in force
 * @param next the placement to switch to (same shape)
 * @param topology the cluster
 * @param model the prices
 * @returns milliseconds (0 when nothing changes)
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * rebalanceMs(placementFromPhy2log([[0, 1, 2, 0]], 3), placementFromPhy2log([[0, 0, 2, 1]], 3),
 *   makeTopology(3, 4, 1, 2, 2), m); // 1
 * ```
 */
export function rebalanceMs(
  previous: Placement,
  next: Placement,
  topology: Topology,
  model: CostModel,
): number {
  return transferPlanMs(planTransfers(previous, next, topology), topology, model);
}

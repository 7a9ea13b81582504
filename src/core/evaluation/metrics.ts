import { offNodeShare } from "../blocks/locality.js";
import { minMaxReplicaLoad, ReplicationWorkspace } from "../blocks/replication.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { ClusterShape, Topology } from "../model/topology.js";

/**
 * Load of every GPU of every layer under a placement, `[layers][numGpus]` row-major. A replica
 * carries `load / replicaCount` of its expert (tokens split evenly among replicas, as engines
 * route them).
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * gpuLoads({ layers: 1, experts: 3, data: new Float64Array([8, 2, 4]) }, p, { numGpus: 2 });
 * // Float64Array [6, 8]: GPU 0 holds half of expert 0 and expert 1, GPU 1 the other half and expert 2
 * ```
 */
export function gpuLoads(
  loads: LoadMatrix,
  placement: Placement,
  topology: Pick<Topology, "numGpus">,
): Float64Array {
  const { numGpus } = topology;
  const { layers, numReplicas: P, numExperts: E } = placement;
  const S = P / numGpus;
  const out = new Float64Array(layers * numGpus);
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < P; s++) {
      const e = placement.phy2log[l * P + s];
      // An empty slot (-1, vLLM's elastic EP) serves nothing.
      if (e < 0) continue;
      out[l * numGpus + Math.floor(s / S)] += loads.data[l * E + e] / placement.logcnt[l * E + e];
    }
  }
  return out;
}

/**
 * GPU loads without EPLB: experts in order, one slot each, GPU `g` holding experts
 * `floor(g * E / G) .. floor((g + 1) * E / G) - 1` (contiguous expert parallelism).
 *
 * @example
 * ```ts
 * contiguousGpuLoads({ layers: 1, experts: 4, data: new Float64Array([1, 2, 3, 4]) }, 2);
 * // Float64Array [3, 7]
 * ```
 */
export function contiguousGpuLoads(loads: LoadMatrix, numGpus: number): Float64Array {
  const { layers, experts: E } = loads;
  const out = new Float64Array(layers * numGpus);
  for (let l = 0; l < layers; l++) {
    for (let g = 0; g < numGpus; g++) {
      const from = Math.floor((g * E) / numGpus);
      const to = Math.floor(((g + 1) * E) / numGpus);
      let sum = 0;
      for (let e = from; e < to; e++) sum += loads.data[l * E + e];
      out[l * numGpus + g] = sum;
    }
  }
  return out;
}

/**
 * Sums GPU loads into node loads, `[layers][numNodes]`; node `n` owns GPUs
 * `n * numGpus / numNodes ..`.
 *
 * @example
 * ```ts
 * nodeLoads(new Float64Array([1, 2, 3, 4]), 1, 4, 2); // Float64Array [3, 7]
 * ```
 */
export function nodeLoads(
  gpu: Float64Array,
  layers: number,
  numGpus: number,
  numNodes: number,
): Float64Array {
  const gpn = numGpus / numNodes;
  const out = new Float64Array(layers * numNodes);
  for (let l = 0; l < layers; l++) {
    for (let g = 0; g < numGpus; g++)
      out[l * numNodes + Math.floor(g / gpn)] += gpu[l * numGpus + g];
  }
  return out;
}

/**
 * Lower bound of each layer's max GPU load: `max(total / numGpus, smallest achievable largest
 * per-replica load)` (the latter by greedy replication, which is optimal for it). No placement
 * with `numReplicas` slots on `numGpus` GPUs can beat it.
 *
 * @example
 * ```ts
 * lowerBounds({ layers: 1, experts: 3, data: new Float64Array([90, 30, 40]) }, { numReplicas: 4, numGpus: 2 });
 * // Float64Array [80]: total 160 over 2 GPUs; 90 split in two is 45 < 80
 * ```
 */
export function lowerBounds(
  loads: LoadMatrix,
  topology: Pick<Topology, "numReplicas" | "numGpus">,
): Float64Array {
  const { numReplicas, numGpus } = topology;
  const { layers, experts: E } = loads;
  const out = new Float64Array(layers);
  const ws = new ReplicationWorkspace();
  for (let l = 0; l < layers; l++) {
    const row = loads.data.subarray(l * E, (l + 1) * E);
    let total = 0;
    for (let e = 0; e < E; e++) total += row[e];
    out[l] = Math.max(total / numGpus, minMaxReplicaLoad(row, E, numReplicas, ws));
  }
  return out;
}

/**
 * Number of (layer, GPU) pairs where the GPU holds two or more replicas of the same expert: a
 * wasted slot, since both replicas' tokens land on the same GPU.
 *
 * @example
 * ```ts
 * duplicateGpuCount(placementFromPhy2log([[0, 0, 1, 2]], 3), { numGpus: 2 }); // 1 (GPU 0 holds expert 0 twice)
 * ```
 */
export function duplicateGpuCount(
  placement: Placement,
  topology: Pick<Topology, "numGpus">,
): number {
  const { numGpus } = topology;
  const { layers, numReplicas: P, numExperts: E } = placement;
  const S = P / numGpus;
  const lastSeen = new Int32Array(E).fill(-1);
  let count = 0;
  for (let l = 0; l < layers; l++) {
    lastSeen.fill(-1);
    for (let g = 0; g < numGpus; g++) {
      let dup = false;
      const stamp = l * numGpus + g;
      for (let j = 0; j < S; j++) {
        const e = placement.phy2log[l * P + g * S + j];
        if (e < 0) continue;
        if (lastSeen[e] === stamp) dup = true;
        lastSeen[e] = stamp;
      }
      if (dup) count++;
    }
  }
  return count;
}

/** Balance figures of per-GPU loads, per layer and over the model. */
export interface BalanceSummary {
  /** Mean over layers of (mean GPU load / max GPU load); 1 is perfect. */
  balancedness: number;
  /** The worst layer's balancedness. */
  worstBalancedness: number;
  /** Per layer: mean GPU load / max GPU load (1 for an all-zero layer). */
  balancednessPerLayer: number[];
  /** Per layer: the largest GPU load. */
  maxGpuLoad: number[];
  /** Per layer: the mean GPU load. */
  meanGpuLoad: number[];
}

/**
 * Balancedness of GPU loads `[layers][numGpus]` in the reference's definition (mean / max per
 * layer, averaged over layers).
 *
 * @example
 * ```ts
 * summarizeBalance(new Float64Array([6, 8, 5, 5]), 2, 2).balancednessPerLayer; // [0.875, 1]
 * ```
 */
export function summarizeBalance(
  gpu: Float64Array,
  layers: number,
  numGpus: number,
): BalanceSummary {
  const perLayer: number[] = new Array(layers);
  const maxes: number[] = new Array(layers);
  const means: number[] = new Array(layers);
  let sum = 0;
  let worst = Number.POSITIVE_INFINITY;
  for (let l = 0; l < layers; l++) {
    let max = 0;
    let total = 0;
    for (let g = 0; g < numGpus; g++) {
      const v = gpu[l * numGpus + g];
      total += v;
      if (v > max) max = v;
    }
    const mean = total / numGpus;
    const b = max > 0 ? mean / max : 1;
    perLayer[l] = b;
    maxes[l] = max;
    means[l] = mean;
    sum += b;
    if (b < worst) worst = b;
  }
  return {
    balancedness: sum / layers,
    worstBalancedness: worst,
    balancednessPerLayer: perLayer,
    maxGpuLoad: maxes,
    meanGpuLoad: means,
  };
}

/**
 * Throws an {@link EplbInputError} unless `placement` can be measured under `loads` on `numGpus`
 * GPUs in `numNodes` nodes: same layers and experts, GPUs dividing the slots, nodes dividing the
 * GPUs. Every metric over a placement read from a file goes through it, so a mismatched file is
 * an error rather than a silently wrong figure.
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix([[1, 2, 3, 4]]);
 * const placement = placementFromPhy2log([[0, 1, 2, 3, 0, 1]], 4);
 * requirePlacementFits(loads, placement, { numGpus: 2, numNodes: 1 }); // passes
 * requirePlacementFits(loads, placement, { numGpus: 4, numNodes: 1 });
 * // throws: numGpus (4) must divide the placement's slots per layer (6)
 * ```
 */
export function requirePlacementFits(
  loads: LoadMatrix,
  placement: Placement,
  topology: ClusterShape,
): void {
  const { numGpus, numNodes = 1 } = topology;
  if (placement.layers !== loads.layers) {
    throw new EplbInputError(
      "placement.layers",
      placement.layers,
      `must equal the number of layers in the loads (${loads.layers})`,
    );
  }
  if (placement.numExperts !== loads.experts) {
    throw new EplbInputError(
      "placement.numExperts",
      placement.numExperts,
      `must equal the number of experts in the loads (${loads.experts})`,
    );
  }
  if (placement.numReplicas % numGpus !== 0) {
    throw new EplbInputError(
      "numGpus",
      numGpus,
      `must divide the placement's slots per layer (${placement.numReplicas})`,
    );
  }
  if (numGpus % numNodes !== 0) {
    throw new EplbInputError("numNodes", numNodes, `must divide numGpus (${numGpus})`);
  }
}

/** Everything `eplb plan` and `eplb eval` report about a placement under given loads. */
export interface PlacementMetrics extends BalanceSummary {
  /** Per layer: the lower bound of the max GPU load (see {@link lowerBounds}). */
  lowerBound: number[];
  /** Per layer: max GPU load / lower bound (1 is optimal; 1 for an all-zero layer). */
  maxOverLowerBoundPerLayer: number[];
  /** Mean over layers of max / lower bound. */
  maxOverLowerBound: number;
  /** Worst layer's max / lower bound. */
  worstMaxOverLowerBound: number;
  /** (layer, GPU) pairs holding two replicas of one expert. */
  duplicateGpus: number;
  /** Mean over layers of (mean node load / max node load). */
  nodeBalancedness: number;
  /**
   * Share of all load served by replicas off their group's home node (see `offNodeShare`); 0
   * for plans that keep every group on one node, and when `numGroups` was not given.
   */
  offNodeShare: number;
}

/**
 * Evaluates a placement under loads: balancedness per layer and overall, lower bound and the
 * ratio to it, duplicates, node balance and (given `numGroups`) the share of load served off its
 * group's node.
 *
 * @param loads - the loads to judge the placement under, `[layers][experts]`
 * @param placement - the placement, with as many layers and experts as `loads`
 * @param topology - the cluster shape: the plan's {@link Topology}, or `{ numGpus, numNodes? }`
 *   when the groups are unknown (then `offNodeShare` is 0)
 * @returns the metrics
 * @throws {EplbInputError} when the placement does not fit the loads or the shape
 * @example
 * ```ts
 * const { placement, topology } = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2);
 * evaluatePlacement(toLoadMatrix([[10, 40, 20, 30]]), placement, topology);
 * // { balancedness: 1, maxOverLowerBound: 1, duplicateGpus: 2, ... }
 * ```
 */
export function evaluatePlacement(
  loads: LoadMatrix,
  placement: Placement,
  topology: ClusterShape,
): PlacementMetrics {
  const { numGpus, numNodes = 1, numGroups = 0 } = topology;
  requirePlacementFits(loads, placement, { numGpus, numNodes });
  const gpu = gpuLoads(loads, placement, { numGpus });
  const summary = summarizeBalance(gpu, loads.layers, numGpus);
  const bounds = lowerBounds(loads, { numReplicas: placement.numReplicas, numGpus });
  const ratio: number[] = new Array(loads.layers);
  let sum = 0;
  let worst = 0;
  for (let l = 0; l < loads.layers; l++) {
    const r = bounds[l] > 0 ? summary.maxGpuLoad[l] / bounds[l] : 1;
    ratio[l] = r;
    sum += r;
    if (r > worst) worst = r;
  }
  const nodes = nodeLoads(gpu, loads.layers, numGpus, numNodes);
  return {
    ...summary,
    lowerBound: Array.from(bounds),
    maxOverLowerBoundPerLayer: ratio,
    maxOverLowerBound: sum / loads.layers,
    worstMaxOverLowerBound: worst,
    duplicateGpus: duplicateGpuCount(placement, { numGpus }),
    nodeBalancedness: summarizeBalance(nodes, loads.layers, numNodes).balancedness,
    offNodeShare: offNodeShare(loads, placement, { numGroups, numNodes }),
  };
}

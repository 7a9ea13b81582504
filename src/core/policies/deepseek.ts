import { type LayerPlanner, planLayers } from "../blocks/layers.js";
import { greedyPacking, PackingWorkspace } from "../blocks/packing.js";
import { greedyReplication, ReplicationWorkspace } from "../blocks/replication.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { DeepseekNodeWorkspace, planDeepseekNode } from "./deepseek-node.js";
import type { Policy } from "./policy.js";

/** Sizes of one hierarchical solve; global mode is `numGroups = numNodes = 1`. */
export interface HierarchyShape {
  numExperts: number;
  numReplicas: number;
  numGroups: number;
  numNodes: number;
  numGpus: number;
}

/** All buffers one layer of the reference needs, allocated once per shape. */
export class DeepseekWorkspace {
  readonly groupLoad: Float64Array;
  readonly groupPack: Int32Array;
  readonly groupRank: Int32Array;
  readonly mlog2log: Int32Array;
  readonly nodeWeight: Float64Array;
  readonly phyLocal: Int32Array;
  readonly phyRank: Int32Array;
  readonly count: Int32Array;
  readonly replicaLoad: Float64Array;
  readonly gpuPack: Int32Array;
  readonly gpuRank: Int32Array;
  readonly packing = new PackingWorkspace();
  readonly replication = new ReplicationWorkspace();
  /** The one-sort node step, when GPUs hold several slots (with one each nothing is sorted). */
  readonly node: DeepseekNodeWorkspace | undefined;

  constructor(shape: HierarchyShape) {
    const { numExperts: E, numReplicas: P, numGroups, numNodes, numGpus } = shape;
    const En = E / numNodes;
    const Pn = P / numNodes;
    const gpusPerNode = numGpus / numNodes;
    this.node = Pn > gpusPerNode ? new DeepseekNodeWorkspace(En, Pn, gpusPerNode) : undefined;
    this.groupLoad = new Float64Array(numGroups);
    this.groupPack = new Int32Array(numGroups);
    this.groupRank = new Int32Array(numGroups);
    this.mlog2log = new Int32Array(E);
    this.nodeWeight = new Float64Array(En);
    this.phyLocal = new Int32Array(Pn);
    this.phyRank = new Int32Array(Pn);
    this.count = new Int32Array(En);
    this.replicaLoad = new Float64Array(Pn);
    this.gpuPack = new Int32Array(Pn);
    this.gpuRank = new Int32Array(Pn);
  }
}

/**
 * One layer of the reference's `rebalance_experts_hierarchical` (DeepSeek EPLB `eplb.py`,
 * d52c72d) in float32 arithmetic: pack groups onto nodes, replicate inside each node, pack each
 * node's replicas onto its GPUs. Writes the layer's slots into `phy2log` / `replicaRank` at
 * `slotOffset` and counts into `logcnt` at `expertOffset`.
 *
 * @example
 * ```ts
 * const shape = { numExperts: 4, numReplicas: 6, numGroups: 1, numNodes: 1, numGpus: 2 };
 * const ws = new DeepseekWorkspace(shape);
 * const phy = new Int32Array(6), rank = new Int32Array(6), cnt = new Int32Array(4);
 * planHierarchicalLayer(new Float64Array([10, 40, 20, 30]), 0, shape, phy, rank, 0, cnt, 0, ws);
 * // phy = [1, 1, 0, 2, 3, 3]: GPU 0 holds 20+20+10, GPU 1 holds 20+15+15
 * ```
 */
export function planHierarchicalLayer(
  loads: Float64Array,
  loadOffset: number,
  shape: HierarchyShape,
  phy2log: Int32Array,
  replicaRank: Int32Array,
  slotOffset: number,
  logcnt: Int32Array,
  expertOffset: number,
  ws: DeepseekWorkspace,
): void {
  const { numExperts: E, numReplicas: P, numGroups, numNodes, numGpus } = shape;
  const groupSize = E / numGroups;
  const groupsPerNode = numGroups / numNodes;
  const En = E / numNodes;
  const Pn = P / numNodes;
  const gpusPerNode = numGpus / numNodes;
  const slotsPerGpu = P / numGpus;

  // Step 1: groups to nodes. Sums accumulate in float32, in expert order; four groups at a time,
  // so that four chains of dependent additions overlap.
  const { groupLoad, groupPack, groupRank, mlog2log } = ws;
  let g = 0;
  for (; g + 4 <= numGroups; g += 4) {
    const b = loadOffset + g * groupSize;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let j = 0; j < groupSize; j++) {
      s0 = Math.fround(s0 + Math.fround(loads[b + j]));
      s1 = Math.fround(s1 + Math.fround(loads[b + groupSize + j]));
      s2 = Math.fround(s2 + Math.fround(loads[b + 2 * groupSize + j]));
      s3 = Math.fround(s3 + Math.fround(loads[b + 3 * groupSize + j]));
    }
    groupLoad[g] = s0;
    groupLoad[g + 1] = s1;
    groupLoad[g + 2] = s2;
    groupLoad[g + 3] = s3;
  }
  for (; g < numGroups; g++) {
    let sum = 0;
    for (let j = 0; j < groupSize; j++) {
      sum = Math.fround(sum + Math.fround(loads[loadOffset + g * groupSize + j]));
    }
    groupLoad[g] = sum;
  }
  greedyPacking(groupLoad, numGroups, numNodes, groupPack, groupRank, ws.packing);
  for (let g = 0; g < numGroups; g++) {
    const base = (groupPack[g] * groupsPerNode + groupRank[g]) * groupSize;
    for (let j = 0; j < groupSize; j++) mlog2log[base + j] = g * groupSize + j;
  }
  const node = ws.node;
  if (node) {
    for (let n = 0; n < numNodes; n++) {
      planDeepseekNode(
        loads,
        loadOffset,
        mlog2log,
        n * En,
        phy2log,
        replicaRank,
        slotOffset + n * Pn,
        logcnt,
        expertOffset,
        node,
      );
    }
    return;
  }

  const { nodeWeight, phyLocal, phyRank, count, replicaLoad, gpuPack, gpuRank } = ws;
  for (let n = 0; n < numNodes; n++) {
    // Step 2: replicate the node's experts (node-major order) into its Pn slots.
    for (let i = 0; i < En; i++)
      nodeWeight[i] = Math.fround(loads[loadOffset + mlog2log[n * En + i]]);
    greedyReplication(nodeWeight, En, Pn, phyLocal, phyRank, count, ws.replication);
    // Step 3: pack the node's replicas onto its GPUs by per-replica load.
    for (let p = 0; p < Pn; p++) {
      const i = phyLocal[p];
      replicaLoad[p] = Math.fround(nodeWeight[i] / count[i]);
    }
    greedyPacking(replicaLoad, Pn, gpusPerNode, gpuPack, gpuRank, ws.packing);
    // Step 4: assemble into the layer's GPU-major slots.
    for (let p = 0; p < Pn; p++) {
      const slot = slotOffset + n * Pn + gpuPack[p] * slotsPerGpu + gpuRank[p];
      phy2log[slot] = mlog2log[n * En + phyLocal[p]];
      replicaRank[slot] = phyRank[p];
    }
    for (let i = 0; i < En; i++) logcnt[expertOffset + mlog2log[n * En + i]] = count[i];
  }
}

/**
 * The shape the reference actually solves: the topology itself when hierarchical, otherwise one
 * group on one node (its global policy).
 *
 * @example
 * ```ts
 * referenceShape(makeTopology(256, 288, 8, 18, 144)).numNodes; // 1 (global)
 * ```
 */
export function referenceShape(topology: Topology): HierarchyShape {
  const { numExperts, numReplicas, numGpus } = topology;
  return topology.hierarchical
    ? {
        numExperts,
        numReplicas,
        numGroups: topology.numGroups,
        numNodes: topology.numNodes,
        numGpus,
      }
    : { numExperts, numReplicas, numGroups: 1, numNodes: 1, numGpus };
}

// The last shape's workspace, kept between plans: allocating its ~40 buffers cost 15 us of a
// 0.9 ms plan on DeepSeek-V3's shape. A layer's plan overwrites every buffer it reads and the
// code is synchronous, so planners of one shape can share it.
let shared: { key: string; ws: DeepseekWorkspace } | undefined;

function sharedWorkspace(shape: HierarchyShape): DeepseekWorkspace {
  const key = `${shape.numExperts},${shape.numReplicas},${shape.numGroups},${shape.numNodes},${shape.numGpus}`;
  if (shared?.key !== key) shared = { key, ws: new DeepseekWorkspace(shape) };
  return shared.ws;
}

/**
 * The reference's per-layer planner for `topology`: {@link planHierarchicalLayer} over a
 * workspace kept for the shape, for {@link planLayers}.
 *
 * @param topology - the cluster shape
 * @returns a planner of one layer
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 1, 1, 2);
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * planLayers(loads, t, deepseekLayerPlanner(t)).phy2log; // Int32Array [1, 1, 0, 2, 3, 3]
 * ```
 */
export function deepseekLayerPlanner(topology: Topology): LayerPlanner {
  const shape = referenceShape(topology);
  const ws = sharedWorkspace(shape);
  return (v) =>
    planHierarchicalLayer(
      v.loads,
      v.loadOffset,
      shape,
      v.phy2log,
      v.replicaRank,
      v.slotOffset,
      v.logcnt,
      v.expertOffset,
      ws,
    );
}

/**
 * Plans every layer exactly as DeepSeek's reference `rebalance_experts` does.
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 1, 1, 2);
 * planDeepseek({ layers: 1, experts: 4, data: new Float64Array([10, 40, 20, 30]) }, t).phy2log;
 * // Int32Array [1, 1, 0, 2, 3, 3]
 * ```
 */
export function planDeepseek(loads: LoadMatrix, topology: Topology): Placement {
  return planLayers(loads, topology, deepseekLayerPlanner(topology));
}

/**
 * Options of the deepseek policy: none, since it reproduces the reference exactly (an option
 * given with it is refused by `rebalanceExperts`, not ignored).
 */
export type DeepseekOptions = Record<never, never>;

/** The `deepseek` policy: exact parity with the reference (ties broken by lowest index). */
export const deepseekPolicy: Policy<DeepseekOptions> = {
  name: "deepseek",
  description:
    "DeepSeek's EPLB reproduced exactly (greedy replication + greedy packing; hierarchical when groups divide by nodes)",
  options: [],
  plan: (loads, topology) => planDeepseek(loads, topology),
  layerPlanner: (topology) => deepseekLayerPlanner(topology),
};

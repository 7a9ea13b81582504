import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { CountsWorkspace } from "./counts/index.js";
import { greedyPacking, PackingWorkspace } from "./packing.js";
import { waterFillCounts } from "./replication.js";

/** Partitions of groups into nodes enumerated exactly up to this many; beyond, swap search. */
export const EXACT_GROUP_PARTITIONS = 20000;

/** Reusable buffers for {@link packGroupsToNodes}. */
export class GroupPackingWorkspace {
  groupLoad = new Float64Array(0);
  groupMax = new Float64Array(0);
  nodeWeight = new Float64Array(0);
  count = new Int32Array(0);
  pack = new Int32Array(0);
  rank = new Int32Array(0);
  assign = new Int32Array(0);
  nodeBound = new Float64Array(0);
  nodeMask = new Int32Array(0);
  bestMasks = new Int32Array(0);
  readonly counts = new CountsWorkspace();
  readonly packing = new PackingWorkspace();
  /** Bound per set of groups (bit mask), for the layer being packed. */
  readonly cache = new Map<number, number>();

  ensure(numGroups: number, numNodes: number, expertsPerNode: number): void {
    if (this.groupLoad.length < numGroups) {
      this.groupLoad = new Float64Array(numGroups);
      this.groupMax = new Float64Array(numGroups);
      this.pack = new Int32Array(numGroups);
      this.rank = new Int32Array(numGroups);
      this.assign = new Int32Array(numGroups);
    }
    if (this.nodeBound.length < numNodes) {
      this.nodeBound = new Float64Array(numNodes);
      this.nodeMask = new Int32Array(numNodes);
      this.bestMasks = new Int32Array(numNodes);
    }
    if (this.nodeWeight.length < expertsPerNode) {
      this.nodeWeight = new Float64Array(expertsPerNode);
      this.count = new Int32Array(expertsPerNode);
    }
  }
}

/**
 * Number of ways to split `numGroups` groups into `numNodes` unordered sets of equal size.
 *
 * @example
 * ```ts
 * groupPartitionCount(8, 4); // 105
 * ```
 */
export function groupPartitionCount(numGroups: number, numNodes: number): number {
  const per = numGroups / numNodes;
  // numGroups! / (per!^numNodes * numNodes!), as a product of binomials to stay finite.
  let total = 1;
  let left = numGroups;
  for (let n = 0; n < numNodes; n++) {
    total *= binomial(left - 1, per - 1);
    left -= per;
  }
  return total;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Shape of a group-to-node packing problem. */
export interface GroupPackingShape {
  numExperts: number;
  numGroups: number;
  numNodes: number;
  gpusPerNode: number;
  slotsPerNode: number;
}

/**
 * The bound no plan can beat on a node holding the given groups: `max(node load / gpusPerNode,
 * smallest achievable largest replica load of its experts on slotsPerNode slots)`.
 */
function nodeBoundOf(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  groups: ArrayLike<number>,
  from: number,
  perNode: number,
  ws: GroupPackingWorkspace,
): number {
  const gs = shape.numExperts / shape.numGroups;
  let total = 0;
  let largest = 0;
  for (let i = from; i < from + perNode; i++) {
    total += ws.groupLoad[groups[i]];
    if (ws.groupMax[groups[i]] > largest) largest = ws.groupMax[groups[i]];
  }
  const perGpu = total / shape.gpusPerNode;
  // Water-filling never ends above the largest single load: skip it when that is below.
  if (largest <= perGpu) return perGpu;
  // Nor above perGpu when giving every expert ceil(load / perGpu) replicas fits the node. An
  // idle expert still takes a slot: at least one replica each, as water-filling counts it.
  let needed = 0;
  for (let i = from; i < from + perNode; i++) {
    const g = groups[i];
    for (let j = 0; j < gs; j++) {
      needed += Math.max(1, Math.ceil(loads[offset + g * gs + j] / perGpu));
    }
  }
  if (needed <= shape.slotsPerNode) return perGpu;
  let k = 0;
  for (let i = from; i < from + perNode; i++) {
    const g = groups[i];
    for (let j = 0; j < gs; j++) ws.nodeWeight[k++] = loads[offset + g * gs + j];
  }
  const replica = waterFillCounts(
    ws.nodeWeight,
    k,
    shape.slotsPerNode,
    ws.count,
    ws.counts.replication,
  );
  return Math.max(perGpu, replica);
}

/** Each group's total and largest load in this layer. */
function groupTotals(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  ws: GroupPackingWorkspace,
): void {
  const gs = shape.numExperts / shape.numGroups;
  for (let g = 0; g < shape.numGroups; g++) {
    let sum = 0;
    let max = 0;
    for (let j = 0; j < gs; j++) {
      const v = loads[offset + g * gs + j];
      sum += v;
      if (v > max) max = v;
    }
    ws.groupLoad[g] = sum;
    ws.groupMax[g] = max;
  }
}

/**
 * Places groups on nodes (`numGroups / numNodes` each) for the hierarchical policies, minimising
 * the largest node bound `max(node load / gpusPerNode, smallest achievable largest replica load
 * of the node's experts)`, then the sum of squared bounds. That bound is what the within-node
 * planning reaches almost exactly, so the layer's max GPU load follows it.
 *
 * Exact (enumeration with pruning) when there are at most {@link EXACT_GROUP_PARTITIONS}
 * partitions, e.g. 8 groups on 4 nodes (105) or 12 on 6 (10395); otherwise the reference's
 * greedy group packing improved by pairwise group swaps between the worst node and the others.
 * Deterministic. Writes `nodeOfGroup[g]` and each node's bound into `ws.nodeBound`, and returns
 * the largest node bound.
 *
 * @example
 * ```ts
 * // 4 groups of 1 expert, 2 nodes of 1 GPU with 2 slots each
 * const nodeOfGroup = new Int32Array(4);
 * packGroupsToNodes(new Float64Array([5, 4, 3, 2]), 0,
 *   { numExperts: 4, numGroups: 4, numNodes: 2, gpusPerNode: 1, slotsPerNode: 2 }, nodeOfGroup);
 * // 7; nodeOfGroup = [0, 1, 1, 0]: {5, 2} and {4, 3}
 * ```
 */
export function packGroupsToNodes(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  nodeOfGroup: Int32Array,
  ws: GroupPackingWorkspace = new GroupPackingWorkspace(),
): number {
  const { numGroups, numNodes } = shape;
  const perNode = numGroups / numNodes;
  ws.ensure(numGroups, numNodes, (shape.numExperts / numGroups) * perNode);
  ws.cache.clear();
  groupTotals(loads, offset, shape, ws);
  if (numNodes === 1) {
    nodeOfGroup.fill(0, 0, numGroups);
    for (let g = 0; g < numGroups; g++) ws.assign[g] = g;
    ws.nodeBound[0] = nodeBoundOf(loads, offset, shape, ws.assign, 0, numGroups, ws);
    return ws.nodeBound[0];
  }
  if (perNode === 1) {
    // Every node holds one group: all assignments are the same up to relabelling nodes.
    let max = 0;
    for (let g = 0; g < numGroups; g++) {
      nodeOfGroup[g] = g;
      ws.assign[g] = g;
      ws.nodeBound[g] = nodeBoundOf(loads, offset, shape, ws.assign, g, 1, ws);
      max = Math.max(max, ws.nodeBound[g]);
    }
    return max;
  }
  if (numGroups <= 30 && groupPartitionCount(numGroups, numNodes) <= EXACT_GROUP_PARTITIONS) {
    return enumeratePartitions(loads, offset, shape, nodeOfGroup, ws);
  }
  return swapSearchPartitions(loads, offset, shape, nodeOfGroup, ws);
}

/** Bound of the node holding the groups in bit mask `mask` (memoised per layer). */
function maskBound(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  mask: number,
  ws: GroupPackingWorkspace,
): number {
  const cached = ws.cache.get(mask);
  if (cached !== undefined) return cached;
  let k = 0;
  for (let g = 0; g < shape.numGroups; g++) if (mask & (1 << g)) ws.rank[k++] = g;
  const bound = nodeBoundOf(loads, offset, shape, ws.rank, 0, k, ws);
  ws.cache.set(mask, bound);
  return bound;
}

/** State of one enumeration, kept in the workspace so recursion allocates nothing. */
interface Enumeration {
  loads: ArrayLike<number>;
  offset: number;
  shape: GroupPackingShape;
  perNode: number;
  bestMax: number;
  bestSq: number;
}

function enumeratePartitions(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  nodeOfGroup: Int32Array,
  ws: GroupPackingWorkspace,
): number {
  const { numGroups, numNodes } = shape;
  const run: Enumeration = {
    loads,
    offset,
    shape,
    perNode: numGroups / numNodes,
    bestMax: Number.POSITIVE_INFINITY,
    bestSq: Number.POSITIVE_INFINITY,
  };
  visitNode(run, ws, 0, 0, 0, 0);
  const best = ws.bestMasks;
  for (let n = 0; n < numNodes; n++) {
    for (let g = 0; g < numGroups; g++) if (best[n] & (1 << g)) nodeOfGroup[g] = n;
    ws.nodeBound[n] = maskBound(loads, offset, shape, best[n], ws);
  }
  return run.bestMax;
}

/**
 * Node `node` takes the lowest unassigned group plus `perNode - 1` others, so every partition is
 * visited once; branches that cannot beat the best (max, then sum of squares) are cut.
 */
function visitNode(
  run: Enumeration,
  ws: GroupPackingWorkspace,
  node: number,
  used: number,
  curMax: number,
  curSq: number,
): void {
  if (node === run.shape.numNodes) {
    if (curMax < run.bestMax || (curMax === run.bestMax && curSq < run.bestSq)) {
      run.bestMax = curMax;
      run.bestSq = curSq;
      ws.bestMasks.set(ws.nodeMask.subarray(0, node));
    }
    return;
  }
  let first = 0;
  while (used & (1 << first)) first++;
  chooseGroups(run, ws, node, used, curMax, curSq, first + 1, 1 << first, run.perNode - 1);
}

function chooseGroups(
  run: Enumeration,
  ws: GroupPackingWorkspace,
  node: number,
  used: number,
  curMax: number,
  curSq: number,
  start: number,
  mask: number,
  left: number,
): void {
  if (left === 0) {
    const b = maskBound(run.loads, run.offset, run.shape, mask, ws);
    const m = Math.max(b, curMax);
    const sq = curSq + b * b;
    if (m > run.bestMax || (m === run.bestMax && sq >= run.bestSq)) return;
    ws.nodeMask[node] = mask;
    visitNode(run, ws, node + 1, used | mask, m, sq);
    return;
  }
  for (let g = start; g < run.shape.numGroups; g++) {
    if (used & (1 << g)) continue;
    chooseGroups(run, ws, node, used, curMax, curSq, g + 1, mask | (1 << g), left - 1);
  }
}

function swapSearchPartitions(
  loads: ArrayLike<number>,
  offset: number,
  shape: GroupPackingShape,
  nodeOfGroup: Int32Array,
  ws: GroupPackingWorkspace,
): number {
  const { numGroups, numNodes } = shape;
  const perNode = numGroups / numNodes;
  const { groupLoad, pack, rank, assign, nodeBound } = ws;
  greedyPacking(groupLoad, numGroups, numNodes, pack, rank, ws.packing);
  // assign[n * perNode + r]: the groups of node n.
  for (let g = 0; g < numGroups; g++) assign[pack[g] * perNode + rank[g]] = g;
  for (let n = 0; n < numNodes; n++) {
    nodeBound[n] = nodeBoundOf(loads, offset, shape, assign, n * perNode, perNode, ws);
  }
  for (let iter = 0; iter < 4 * numGroups; iter++) {
    let worst = 0;
    for (let n = 1; n < numNodes; n++) if (nodeBound[n] > nodeBound[worst]) worst = n;
    const current = nodeBound[worst];
    let bestSlot = -1;
    let bestOther = -1;
    let bestValue = current;
    let bestA = 0;
    let bestB = 0;
    for (let i = 0; i < perNode; i++) {
      for (let m = 0; m < numNodes; m++) {
        if (m === worst) continue;
        for (let j = 0; j < perNode; j++) {
          const ai = worst * perNode + i;
          const bj = m * perNode + j;
          const ga = assign[ai];
          assign[ai] = assign[bj];
          assign[bj] = ga;
          const a = nodeBoundOf(loads, offset, shape, assign, worst * perNode, perNode, ws);
          const b = nodeBoundOf(loads, offset, shape, assign, m * perNode, perNode, ws);
          assign[bj] = assign[ai];
          assign[ai] = ga;
          const v = Math.max(a, b);
          if (v < bestValue * (1 - 1e-12)) {
            bestValue = v;
            bestSlot = worst * perNode + i;
            bestOther = m * perNode + j;
            bestA = a;
            bestB = b;
          }
        }
      }
    }
    if (bestSlot < 0) break;
    const t = assign[bestSlot];
    assign[bestSlot] = assign[bestOther];
    assign[bestOther] = t;
    nodeBound[worst] = bestA;
    nodeBound[(bestOther / perNode) | 0] = bestB;
  }
  let max = 0;
  for (let n = 0; n < numNodes; n++) {
    for (let r = 0; r < perNode; r++) nodeOfGroup[assign[n * perNode + r]] = n;
    if (nodeBound[n] > max) max = nodeBound[n];
  }
  return max;
}

/**
 * Share of all load (over every layer) served by replicas that sit off their group's home node,
 * where a group's home node is the node serving the largest part of that group's load (lowest
 * index on ties). Zero for plans that keep every group on one node (the strict hierarchical
 * contract); meaningful when `numGroups % numNodes == 0`, otherwise 0 is returned.
 *
 * @example
 * ```ts
 * // 2 groups of 1 expert on 2 nodes of 2 slots; expert 0 has 3 replicas, one on node 1
 * offNodeShare(toLoadMatrix([[8, 4]]), placementFromPhy2log([[0, 0, 0, 1]], 2), {
 *   numGroups: 2,
 *   numNodes: 2,
 * });
 * // 0.222...: 8/3 of expert 0's tokens are served off its home node 0, out of 12 in all
 * ```
 */
export function offNodeShare(
  loads: LoadMatrix,
  placement: Placement,
  topology: Pick<Topology, "numGroups" | "numNodes">,
): number {
  const { numGroups, numNodes } = topology;
  if (numNodes < 2 || numGroups < 1 || numGroups % numNodes !== 0) return 0;
  const { layers, numReplicas: P, numExperts: E } = placement;
  const gs = E / numGroups;
  const slotsPerNode = P / numNodes;
  const served = new Float64Array(numGroups * numNodes);
  let total = 0;
  let off = 0;
  for (let l = 0; l < layers; l++) {
    served.fill(0);
    for (let s = 0; s < P; s++) {
      const e = placement.phy2log[l * P + s];
      if (e < 0) continue;
      const share = loads.data[l * E + e] / placement.logcnt[l * E + e];
      served[Math.floor(e / gs) * numNodes + Math.floor(s / slotsPerNode)] += share;
    }
    for (let g = 0; g < numGroups; g++) {
      let home = 0;
      let sum = 0;
      for (let n = 0; n < numNodes; n++) {
        const v = served[g * numNodes + n];
        sum += v;
        if (v > served[g * numNodes + home]) home = n;
      }
      total += sum;
      off += sum - served[g * numNodes + home];
    }
  }
  return total > 0 ? off / total : 0;
}

import { CountsWorkspace } from "./workspace.js";

/**
 * Replica counts for the relaxed hierarchy, where each expert keeps one replica on its home node
 * and the others may go anywhere. Two bounds then limit the largest GPU load: the largest replica
 * load, and each node's forced load (the home replicas, `sum of weight / count` over its experts)
 * spread over its `gpusPerNode` GPUs. Each further replica goes where the larger of the two
 * bounds is: to the expert with the largest replica load, or, when a node's forced load binds, to
 * that node's expert whose home replica sheds most (`weight / (count * (count + 1))`), as long
 * as that node bound is above its home replicas' share of the mean GPU load (`numExperts /
 * numReplicas` of it: the node's other slots carry load from elsewhere). Ties go to the lowest
 * index. Writes `count` and returns the final value of the larger bound.
 *
 * @example
 * ```ts
 * // experts 0, 1 on node 0 (loads 60, 60) and 2, 3 on node 1 (10, 10); 1 GPU per node, 6 slots
 * const count = new Int32Array(4);
 * homeAwareCounts(new Float64Array([60, 60, 10, 10]), 4, 6, new Int32Array([0, 0, 1, 1]), 2, 1, count);
 * // 60; count = [2, 2, 1, 1]: node 0's forced load drops from 120 to 60
 * ```
 */
export function homeAwareCounts(
  weight: ArrayLike<number>,
  numExperts: number,
  numReplicas: number,
  home: Int32Array,
  numNodes: number,
  gpusPerNode: number,
  count: Int32Array,
  ws: CountsWorkspace = new CountsWorkspace(),
): number {
  ws.ensure(numExperts, 0, numNodes);
  const forced = ws.gpuLoad;
  forced.fill(0, 0, numNodes);
  let total = 0;
  for (let e = 0; e < numExperts; e++) {
    count[e] = 1;
    forced[home[e]] += weight[e];
    total += weight[e];
  }
  const meanGpu = total / (numNodes * gpusPerNode);
  // Experts per node over slots per node (each node homes the same number of experts).
  const homeShare = numExperts / numReplicas;
  let bound = 0;
  for (let r = numExperts; r <= numReplicas; r++) {
    let top = 0;
    for (let e = 1; e < numExperts; e++) {
      if (weight[e] / count[e] > weight[top] / count[top]) top = e;
    }
    let node = 0;
    for (let n = 1; n < numNodes; n++) if (forced[n] > forced[node]) node = n;
    const replicaBound = weight[top] / count[top];
    const nodeBound = forced[node] / gpusPerNode;
    bound = Math.max(replicaBound, nodeBound);
    if (r === numReplicas) break;
    let pick = top;
    // A node also fills its other slots with replicas from elsewhere, so its forced load binds
    // while above its slots' share of the mean (home experts / slots per node); below that,
    // water-fill instead.
    if (nodeBound > replicaBound && nodeBound > meanGpu * homeShare) {
      let gain = -1;
      for (let e = 0; e < numExperts; e++) {
        if (home[e] !== node) continue;
        const g = weight[e] / (count[e] * (count[e] + 1));
        if (g > gain) {
          gain = g;
          pick = e;
        }
      }
    }
    forced[home[pick]] -= weight[pick] / (count[pick] * (count[pick] + 1));
    count[pick]++;
  }
  return bound;
}

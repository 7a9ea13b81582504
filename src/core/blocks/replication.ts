/** Reusable buffers for {@link greedyReplication}, {@link waterFillCounts} and the lower bound. */
export class ReplicationWorkspace {
  heap = new Int32Array(0);
  key = new Float64Array(0);
  count = new Int32Array(0);
  treeBits = new Int32Array(0);
  treeExpert = new Int32Array(0);
  ensure(numExperts: number): void {
    if (this.heap.length < numExperts) {
      this.heap = new Int32Array(numExperts);
      this.key = new Float64Array(numExperts);
      this.count = new Int32Array(numExperts);
      this.treeBits = new Int32Array(4 * numExperts);
      this.treeExpert = new Int32Array(4 * numExperts);
    }
  }
}

/**
 * Greedy replication, the reference's `replicate_experts` (DeepSeek EPLB `eplb.py`, d52c72d):
 * `numExperts` experts get `numReplicas >= numExperts` replicas. Replica `i < numExperts` is
 * expert `i` (rank 0); each further replica goes to the expert with the largest per-replica load
 * `weight / count` (float32 division; lowest expert index on ties). This water-filling is optimal
 * for the largest per-replica load.
 *
 * A tournament tree over the experts' float32 load-per-replica bits replaces the reference's full
 * argmax per replica: each pick rewrites one leaf-to-root path with integer masks.
 *
 * Writes `phy2log[0..numReplicas)` (expert of each replica), `replicaRank` and `count[0..numExperts)`.
 *
 * @example
 * ```ts
 * const phy = new Int32Array(5), rank = new Int32Array(5), count = new Int32Array(3);
 * greedyReplication(new Float64Array([90, 30, 40]), 3, 5, phy, rank, count);
 * // phy = [0, 1, 2, 0, 0], rank = [0, 0, 0, 1, 2], count = [3, 1, 1]
 * ```
 */
export function greedyReplication(
  weights: ArrayLike<number>,
  numExperts: number,
  numReplicas: number,
  phy2log: Int32Array,
  replicaRank: Int32Array,
  count: Int32Array,
  workspace: ReplicationWorkspace = new ReplicationWorkspace(),
): void {
  for (let e = 0; e < numExperts; e++) {
    phy2log[e] = e;
    replicaRank[e] = 0;
    count[e] = 1;
  }
  if (numReplicas === numExperts) return;
  workspace.ensure(numExperts);
  // Leaf `leaves + e` holds expert e's bits (sign bit dropped: a -0 load is a zero); each inner
  // node the larger child's bits and expert, ties to the left child, whose experts have the
  // lower indices. Padding leaves hold 0 and sit right of every expert, so they never win.
  const { treeBits, treeExpert } = workspace;
  let leaves = 1;
  while (leaves < numExperts) leaves *= 2;
  for (let e = 0; e < leaves; e++) {
    if (e < numExperts) {
      F32[0] = weights[e];
      treeBits[leaves + e] = U32[0] & SIGNLESS;
    } else treeBits[leaves + e] = 0;
    treeExpert[leaves + e] = e;
  }
  for (let i = leaves - 1; i >= 1; i--) {
    const l = 2 * i;
    const lb = treeBits[l];
    const rb = treeBits[l + 1];
    const right = (lb - rb) >> 31;
    treeBits[i] = lb ^ ((lb ^ rb) & right);
    treeExpert[i] = treeExpert[l] ^ ((treeExpert[l] ^ treeExpert[l + 1]) & right);
  }
  for (let r = numExperts; r < numReplicas; r++) {
    const e = treeExpert[1];
    phy2log[r] = e;
    const c = count[e];
    replicaRank[r] = c;
    count[e] = c + 1;
    F32[0] = Math.fround(weights[e]) / (c + 1);
    let bits = U32[0] & SIGNLESS;
    let winner = e;
    let i = leaves + e;
    treeBits[i] = bits;
    while (i > 1) {
      const s = i ^ 1;
      const sb = treeBits[s];
      // All ones when the sibling wins: heavier, or as heavy and on the left (i odd).
      const lose = (bits - sb - (i & 1)) >> 31;
      bits ^= (bits ^ sb) & lose;
      winner ^= (winner ^ treeExpert[s]) & lose;
      i >>= 1;
      treeBits[i] = bits;
      treeExpert[i] = winner;
    }
  }
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const SIGNLESS = 0x7fffffff;

function siftDownMax(heap: Int32Array, size: number, key: Float64Array, start: number): void {
  let i = start;
  const node = heap[i];
  const nodeKey = key[node];
  for (;;) {
    const left = 2 * i + 1;
    if (left >= size) break;
    let child = left;
    let childNode = heap[left];
    const right = left + 1;
    if (right < size) {
      const r = heap[right];
      if (key[r] > key[childNode] || (key[r] === key[childNode] && r < childNode)) {
        child = right;
        childNode = r;
      }
    }
    const ck = key[childNode];
    if (ck > nodeKey || (ck === nodeKey && childNode < node)) {
      heap[i] = childNode;
      i = child;
    } else break;
  }
  heap[i] = node;
}

/**
 * Replica counts by water-filling in float64: every expert starts with one replica and each
 * further replica goes to the expert with the largest `weight / count` (lowest index on ties).
 * This minimises the largest per-replica load; unlike {@link greedyReplication} it does not round
 * to float32 (the balanced policy and the metrics measure loads in float64). Writes
 * `count[0..numExperts)` and returns that largest load.
 *
 * @example
 * ```ts
 * const count = new Int32Array(3);
 * waterFillCounts(new Float64Array([90, 30, 40]), 3, 5, count); // 40; count = [3, 1, 1]
 * ```
 */
export function waterFillCounts(
  weight: ArrayLike<number>,
  numExperts: number,
  numReplicas: number,
  count: Int32Array,
  workspace: ReplicationWorkspace = new ReplicationWorkspace(),
): number {
  workspace.ensure(numExperts);
  const { heap, key } = workspace;
  for (let e = 0; e < numExperts; e++) {
    count[e] = 1;
    key[e] = weight[e];
    heap[e] = e;
  }
  for (let i = (numExperts >> 1) - 1; i >= 0; i--) siftDownMax(heap, numExperts, key, i);
  for (let r = numExperts; r < numReplicas; r++) {
    const e = heap[0];
    count[e]++;
    key[e] = weight[e] / count[e];
    siftDownMax(heap, numExperts, key, 0);
  }
  return key[heap[0]];
}

/**
 * The smallest achievable largest per-replica load when `numExperts` experts share `numReplicas`
 * replicas (float64), i.e. the max of `weight / count` after water-filling: one half of the
 * lower bound on a layer's max GPU load.
 *
 * @example
 * ```ts
 * minMaxReplicaLoad(new Float64Array([90, 30, 40]), 3, 5); // 40 (90 split in 3 is 30; 40 stays)
 * ```
 */
export function minMaxReplicaLoad(
  weights: ArrayLike<number>,
  numExperts: number,
  numReplicas: number,
  workspace: ReplicationWorkspace = new ReplicationWorkspace(),
): number {
  workspace.ensure(numExperts);
  return waterFillCounts(weights, numExperts, numReplicas, workspace.count, workspace);
}

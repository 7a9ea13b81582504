/** Reusable buffers for {@link greedyReplication}, {@link waterFillCounts} and the lower bound. */
export class ReplicationWorkspace {
  heap = new Int32Array(0);
  key = new Float64Array(0);
  count = new Int32Array(0);
  ensure(numExperts: number): void {
    if (this.heap.length < numExperts) {
      this.heap = new Int32Array(numExperts);
      this.key = new Float64Array(numExperts);
      this.count = new Int32Array(numExperts);
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
 * A max-heap keyed by (load per replica, -index) replaces the reference's full argmax per replica.
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
  // Max-heap of float64 keys `bits(float32 load per replica) * stride + (stride - 1 - expert)`:
  // one comparison orders by (load descending, index ascending) exactly, as in the packing heap.
  const heap = workspace.key;
  let stride = 1;
  while (stride < numExperts) stride *= 2;
  for (let e = 0; e < numExperts; e++) {
    F32[0] = weights[e];
    heap[e] = U32[0] * stride + (stride - 1 - e);
  }
  for (let i = (numExperts >> 1) - 1; i >= 0; i--) siftDownKey(heap, numExperts, i, heap[i]);
  for (let r = numExperts; r < numReplicas; r++) {
    const rootKey = heap[0];
    const e = stride - 1 - (rootKey - Math.floor(rootKey / stride) * stride);
    phy2log[r] = e;
    replicaRank[r] = count[e];
    count[e]++;
    F32[0] = Math.fround(weights[e]) / count[e];
    siftDownKey(heap, numExperts, 0, U32[0] * stride + (stride - 1 - e));
  }
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Places `key` at `start` of the max-heap `heap[0..size)` and sifts it down. */
function siftDownKey(heap: Float64Array, size: number, start: number, key: number): void {
  let i = start;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    let childKey = heap[child];
    if (child + 1 < size && heap[child + 1] > childKey) {
      child++;
      childKey = heap[child];
    }
    if (childKey <= key) break;
    heap[i] = childKey;
    i = child;
  }
  heap[i] = key;
}

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

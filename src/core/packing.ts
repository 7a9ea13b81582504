import { OrderWorkspace, orderDescending } from "./order.js";

/** Reusable buffers for {@link greedyPacking}; grows to the largest problem seen. */
export class PackingWorkspace {
  order = new Int32Array(0);
  heap = new Int32Array(0);
  packWeight = new Float64Array(0);
  packCount = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();

  ensure(numItems: number, numPacks: number): void {
    if (this.order.length < numItems) this.order = new Int32Array(numItems);
    if (this.heap.length < numPacks) {
      this.heap = new Int32Array(numPacks);
      this.packWeight = new Float64Array(numPacks);
      this.packCount = new Int32Array(numPacks);
    }
  }
}

/**
 * Balanced packing of `n` weighted items into `numPacks` packs of exactly `n / numPacks` items:
 * the reference's `balanced_packing` (DeepSeek EPLB `eplb.py`, commit d52c72d).
 *
 * Items are taken heaviest first (ties: lowest index first) and each goes to the lightest pack
 * that still has room (ties: lowest pack index). Pack weights accumulate in float32 like the
 * reference. A min-heap keyed by (weight, pack index) replaces the reference's linear scan over
 * packs; it picks the same pack because the key order is the same.
 *
 * With one item per pack the reference skips sorting and puts item `i` in pack `i`; so does this.
 *
 * Writes `pack[i]` (pack of item `i`) and `rank[i]` (its position within that pack).
 *
 * @example
 * ```ts
 * const pack = new Int32Array(4), rank = new Int32Array(4);
 * greedyPacking(new Float64Array([4, 3, 2, 1]), 4, 2, pack, rank);
 * // pack = [0, 1, 1, 0], rank = [0, 0, 1, 1]: packs {4, 1} and {3, 2}
 * ```
 */
export function greedyPacking(
  weights: ArrayLike<number>,
  n: number,
  numPacks: number,
  pack: Int32Array,
  rank: Int32Array,
  workspace: PackingWorkspace = new PackingWorkspace(),
): void {
  const perPack = n / numPacks;
  if (perPack === 1) {
    for (let i = 0; i < n; i++) {
      pack[i] = i;
      rank[i] = 0;
    }
    return;
  }
  workspace.ensure(n, numPacks);
  const { order, heap, packWeight, packCount } = workspace;
  orderDescending(weights, n, order, workspace.orderWorkspace);
  for (let p = 0; p < numPacks; p++) {
    heap[p] = p;
    packWeight[p] = 0;
    packCount[p] = 0;
  }
  // All weights are 0, so the identity array is already a valid (weight, index) min-heap.
  let heapSize = numPacks;
  for (let t = 0; t < n; t++) {
    const item = order[t];
    const p = heap[0];
    pack[item] = p;
    rank[item] = packCount[p];
    packWeight[p] = Math.fround(packWeight[p] + Math.fround(weights[item]));
    packCount[p]++;
    if (packCount[p] === perPack) {
      heapSize--;
      heap[0] = heap[heapSize];
    }
    siftDown(heap, heapSize, packWeight);
  }
}

/** Restores the (weight, index) min-heap property after the root's key grew or was replaced. */
function siftDown(heap: Int32Array, size: number, key: Float64Array): void {
  let i = 0;
  const node = heap[0];
  const nodeKey = key[node];
  for (;;) {
    const left = 2 * i + 1;
    if (left >= size) break;
    let child = left;
    let childNode = heap[left];
    const right = left + 1;
    if (right < size) {
      const r = heap[right];
      if (key[r] < key[childNode] || (key[r] === key[childNode] && r < childNode)) {
        child = right;
        childNode = r;
      }
    }
    const ck = key[childNode];
    if (ck < nodeKey || (ck === nodeKey && childNode < node)) {
      heap[i] = childNode;
      i = child;
    } else break;
  }
  heap[i] = node;
}

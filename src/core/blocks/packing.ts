import { OrderWorkspace, orderDescending } from "./order.js";

/** Reusable buffers for {@link greedyPacking}; grows to the largest problem seen. */
export class PackingWorkspace {
  order = new Int32Array(0);
  heap = new Float64Array(0);
  packWeight = new Float64Array(0);
  packCount = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();

  ensure(numItems: number, numPacks: number): void {
    if (this.order.length < numItems) this.order = new Int32Array(numItems);
    if (this.heap.length < numPacks) {
      this.heap = new Float64Array(numPacks);
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
  // The heap holds one float64 key per open pack, `bits(float32 weight) * stride + pack`: the
  // float32 bit pattern is monotone for non-negative values, so one comparison orders packs by
  // (weight, index) exactly, with no indirection and half the branches of a pair comparison.
  let stride = 1;
  while (stride < numPacks) stride *= 2;
  for (let p = 0; p < numPacks; p++) {
    heap[p] = p;
    packWeight[p] = 0;
    packCount[p] = 0;
  }
  // All weights are 0, so keys 0..numPacks-1 in order already form a min-heap.
  let heapSize = numPacks;
  for (let t = 0; t < n; t++) {
    const item = order[t];
    const rootKey = heap[0];
    const p = rootKey - Math.floor(rootKey / stride) * stride;
    pack[item] = p;
    rank[item] = packCount[p];
    const w = Math.fround(packWeight[p] + Math.fround(weights[item]));
    packWeight[p] = w;
    packCount[p]++;
    if (packCount[p] === perPack) {
      heapSize--;
      siftDown(heap, heapSize, heap[heapSize]);
    } else {
      F32[0] = w;
      siftDown(heap, heapSize, U32[0] * stride + p);
    }
  }
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Puts `key` at the root of the min-heap `heap[0..size)` and sifts it down to its place. */
function siftDown(heap: Float64Array, size: number, key: number): void {
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    let childKey = heap[child];
    if (child + 1 < size && heap[child + 1] < childKey) {
      child++;
      childKey = heap[child];
    }
    if (childKey >= key) break;
    heap[i] = childKey;
    i = child;
  }
  heap[i] = key;
}

import { orderDescending } from "../order.js";
import { CountsWorkspace } from "./workspace.js";

/** Whether expert `a` sorts before `b`: larger replica load, or equal and lower index. */
function before(a: number, b: number, load: Float64Array): boolean {
  return load[a] > load[b] || (load[a] === load[b] && a < b);
}

/**
 * Writes into `order[0..n)` the experts sorted by replica load `weight / count` descending (ties:
 * lower index first), exactly in float64, and their replica loads into `ws.replicaLoad`.
 */
export function sortByReplicaLoad(
  weight: ArrayLike<number>,
  n: number,
  count: ArrayLike<number>,
  order: Int32Array,
  ws: CountsWorkspace,
): void {
  const load = ws.replicaLoad;
  for (let e = 0; e < n; e++) load[e] = weight[e] / count[e];
  // The radix order compares float32; an insertion pass makes it exact (it is nearly sorted).
  orderDescending(load, n, order, ws.orderWorkspace);
  for (let k = 1; k < n; k++) {
    const e = order[k];
    let i = k;
    while (i > 0 && before(e, order[i - 1], load)) {
      order[i] = order[i - 1];
      i--;
    }
    order[i] = e;
  }
}

/**
 * The order of `parent` (sorted for the parent's counts) after experts `d` and `r` changed their
 * replica loads (already in `ws.replicaLoad`): both are taken out and put back in place. O(n).
 */
export function reorder(
  parent: Int32Array,
  n: number,
  d: number,
  r: number,
  out: Int32Array,
  ws: CountsWorkspace,
): void {
  const load = ws.replicaLoad;
  let first = d;
  let second = r;
  if (before(r, d, load)) {
    first = r;
    second = d;
  }
  let k = 0;
  let pending = 0;
  for (let i = 0; i < n; i++) {
    const e = parent[i];
    if (e === d || e === r) continue;
    if (pending === 0 && before(first, e, load)) {
      out[k++] = first;
      pending = 1;
    }
    if (pending === 1 && before(second, e, load)) {
      out[k++] = second;
      pending = 2;
    }
    out[k++] = e;
  }
  if (pending === 0) out[k++] = first;
  if (pending <= 1) out[k++] = second;
}

/**
 * The estimate of {@link estimateMaxLoad} for experts already sorted by replica load (`order`,
 * loads in `ws.replicaLoad`). One slot per GPU: the largest replica. Two: pairs largest with
 * smallest, walking runs of equal replicas from both ends (O(n)); pairs that would hold one
 * expert twice (forbidden by the caps) swap partners with the pairs just before them, and when
 * there are too few of those, as with more slots, largest-first greedy
 * over a (load, index) heap of GPUs with room, with the packing's per-GPU replica caps.
 */
export function estimateSorted(
  n: number,
  count: ArrayLike<number>,
  order: Int32Array,
  numGpus: number,
  slotsPerGpu: number,
  ws: CountsWorkspace,
): number {
  const load = ws.replicaLoad;
  const { hot } = ws;
  ws.hotCount = 0;
  ws.atMax = 0;
  if (slotsPerGpu === 1) {
    const max = load[order[0]];
    hot[ws.hotCount++] = order[0];
    for (let i = 0; i < n && load[order[i]] >= max * (1 - 1e-9); i++) ws.atMax += count[order[i]];
    return max;
  }
  if (slotsPerGpu === 2) {
    // The front walks the first numGpus replicas, the back the last numGpus; each pair takes
    // one from each. A run may straddle the middle: `left` bounds both sides there.
    let i = 0;
    let j = n - 1;
    let front = count[order[0]];
    let back = count[order[n - 1]];
    let left = numGpus;
    let max = -1;
    let hotA = order[0];
    let hotB = order[n - 1];
    let clash = false;
    while (left > 0) {
      const k = Math.min(front, back, left);
      const a = order[i];
      const b = order[j];
      if (a === b && count[a] <= numGpus) {
        // The last `left` pairs would hold expert `a` twice, which the cap forbids. Each takes
        // the partner of one of the `left` pairs before them instead: those become (front item,
        // a) and (a, back item), and the largest new sum is a plus the front item `left`
        // positions before the clash.
        const p = numGpus - 2 * left;
        if (p < 0) {
          clash = true;
          break;
        }
        let q = 0;
        let seen = count[order[0]];
        while (seen <= p) seen += count[order[++q]];
        const sum = load[order[q]] + load[a];
        if (sum > max * (1 + 1e-9)) {
          max = sum;
          ws.atMax = left;
          hotA = order[q];
          hotB = a;
        } else if (sum >= max * (1 - 1e-9)) ws.atMax += left;
        break;
      }
      const sum = load[a] + load[b];
      if (sum > max * (1 + 1e-9)) {
        max = sum;
        ws.atMax = k;
        hotA = a;
        hotB = b;
      } else if (sum >= max * (1 - 1e-9)) ws.atMax += k;
      front -= k;
      back -= k;
      left -= k;
      if (front === 0 && i < n - 1) front = count[order[++i]];
      if (back === 0 && j > 0) back = count[order[--j]];
    }
    if (!clash) {
      hot[ws.hotCount++] = hotA;
      if (hotB !== hotA) hot[ws.hotCount++] = hotB;
      return max;
    }
    ws.atMax = 0;
  }
  const { gpuHeap, gpuLoad, gpuFill, gpuStamp, gpuMult, blocked, itemExpert, itemGpu } = ws;
  for (let g = 0; g < numGpus; g++) {
    gpuHeap[g] = g;
    gpuLoad[g] = 0;
    gpuFill[g] = 0;
    gpuStamp[g] = -1;
  }
  let size = numGpus;
  let t = 0;
  for (let i = 0; i < n; i++) {
    const e = order[i];
    const v = load[e];
    const c = count[e];
    // Same cap as the real packing: one replica per GPU unless there are more than GPUs.
    const cap = c <= numGpus ? 1 : Math.ceil(c / numGpus);
    for (let r = 0; r < c; r++) {
      let nb = 0;
      let g = -1;
      while (size > 0) {
        const top = gpuHeap[0];
        gpuHeap[0] = gpuHeap[--size];
        siftDownMin(gpuHeap, size, gpuLoad);
        if (gpuStamp[top] !== e || gpuMult[top] < cap) {
          g = top;
          break;
        }
        blocked[nb++] = top;
      }
      if (g < 0) g = blocked[--nb];
      itemExpert[t] = e;
      itemGpu[t++] = g;
      gpuLoad[g] += v;
      if (gpuStamp[g] === e) gpuMult[g]++;
      else {
        gpuStamp[g] = e;
        gpuMult[g] = 1;
      }
      if (++gpuFill[g] < slotsPerGpu) size = heapPushMin(gpuHeap, size, g, gpuLoad);
      for (let k = 0; k < nb; k++) size = heapPushMin(gpuHeap, size, blocked[k], gpuLoad);
    }
  }
  let h = 0;
  for (let g = 1; g < numGpus; g++) if (gpuLoad[g] > gpuLoad[h]) h = g;
  const max = gpuLoad[h];
  for (let g = 0; g < numGpus; g++) if (gpuLoad[g] >= max * (1 - 1e-9)) ws.atMax++;
  for (let k = 0; k < t; k++) if (itemGpu[k] === h) hot[ws.hotCount++] = itemExpert[k];
  return max;
}

function heapPushMin(heap: Int32Array, size: number, node: number, key: Float64Array): number {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent];
    if (key[p] < key[node] || (key[p] === key[node] && p < node)) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = node;
  return size + 1;
}

/**
 * Fast estimate of the largest GPU load that counts `count` allow on `numGpus` GPUs of
 * `slotsPerGpu` slots, used to compare count vectors: one slot per GPU is exact (the largest
 * replica); two slots pair largest with smallest (optimal for fixed counts, duplicates aside);
 * more slots use largest-first greedy packing with the per-GPU caps. Also records in `ws.hot` the
 * experts of the hottest GPU and in `ws.atMax` how many GPUs are within 1e-9 of the maximum.
 *
 * @example
 * ```ts
 * const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
 * estimateMaxLoad(w, 8, new Int32Array([4, 3, 1, 3, 1, 1, 1, 2]), 8, 2); // 196.666...
 * ```
 */
export function estimateMaxLoad(
  weight: ArrayLike<number>,
  numExperts: number,
  count: Int32Array,
  numGpus: number,
  slotsPerGpu: number,
  ws: CountsWorkspace = new CountsWorkspace(),
): number {
  ws.ensure(numExperts, numGpus * slotsPerGpu, numGpus);
  sortByReplicaLoad(weight, numExperts, count, ws.trialOrder, ws);
  return estimateSorted(numExperts, count, ws.trialOrder, numGpus, slotsPerGpu, ws);
}

function siftDownMin(heap: Int32Array, size: number, key: Float64Array): void {
  if (size === 0) return;
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

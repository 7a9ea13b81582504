import { OrderWorkspace, orderDescending } from "./order.js";

/**
 * One packing problem of the balanced policy: `numExperts` experts with `count[e]` replicas each
 * spread over `numGpus` GPUs of exactly `slotsPerGpu` slots. The global policy has one scope per
 * layer; the hierarchical policy has one per node; the relaxed hierarchy has one per layer with
 * a home node per expert.
 *
 * All buffers are flat typed arrays sized to the largest scope seen, reused across scopes and
 * layers. The assignment is `slotExpert[g * slotsPerGpu + k]` (GPU-major, like the output);
 * replicas of one expert are interchangeable, so no replica identity is kept until the end.
 *
 * A replica carries `weight[e] / count[e]` (`replicaLoad[e]`), all float64.
 */
export class ScopeWorkspace {
  numExperts = 0;
  numGpus = 0;
  slotsPerGpu = 0;
  /**
   * GPUs per node when experts have home nodes (relaxed hierarchy), else 0: each expert must
   * keep at least one replica on node `home[e]` (GPUs `home[e] * gpusPerNode ..`).
   */
  gpusPerNode = 0;
  weight = new Float64Array(0);
  count = new Int32Array(0);
  replicaLoad = new Float64Array(0);
  home = new Int32Array(0);
  /** Replicas of each expert on its home node (kept current by packing and refinement). */
  homeCount = new Int32Array(0);
  slotExpert = new Int32Array(0);
  gpuLoad = new Float64Array(0);
  // Packing temporaries.
  itemExpert = new Int32Array(0);
  itemLoad = new Float64Array(0);
  order = new Int32Array(0);
  gpuFill = new Int32Array(0);
  gpuStamp = new Int32Array(0);
  gpuMult = new Int32Array(0);
  /** GPU of each expert's home replica (relaxed packing). */
  homeGpu = new Int32Array(0);
  gpuHeap = new Int32Array(0);
  blocked = new Int32Array(0);
  /** GPUs in ascending load order (ties: lower index first) and each GPU's position in it. */
  gpuOrder = new Int32Array(0);
  gpuPos = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();

  /** Sets the scope's sizes, growing buffers when needed; contents are left to the caller. */
  reset(numExperts: number, numGpus: number, slotsPerGpu: number, gpusPerNode = 0): void {
    this.numExperts = numExperts;
    this.numGpus = numGpus;
    this.slotsPerGpu = slotsPerGpu;
    this.gpusPerNode = gpusPerNode;
    const slots = numGpus * slotsPerGpu;
    if (this.weight.length < numExperts) {
      this.weight = new Float64Array(numExperts);
      this.count = new Int32Array(numExperts);
      this.replicaLoad = new Float64Array(numExperts);
      this.home = new Int32Array(numExperts);
      this.homeCount = new Int32Array(numExperts);
      this.homeGpu = new Int32Array(numExperts);
    }
    if (this.slotExpert.length < slots) {
      this.slotExpert = new Int32Array(slots);
      this.itemExpert = new Int32Array(slots);
      this.itemLoad = new Float64Array(slots);
      this.order = new Int32Array(slots);
    }
    if (this.gpuLoad.length < numGpus) {
      this.gpuLoad = new Float64Array(numGpus);
      this.gpuFill = new Int32Array(numGpus);
      this.gpuStamp = new Int32Array(numGpus);
      this.gpuMult = new Int32Array(numGpus);
      this.gpuHeap = new Int32Array(numGpus);
      this.blocked = new Int32Array(numGpus);
      this.gpuOrder = new Int32Array(numGpus);
      this.gpuPos = new Int32Array(numGpus);
    }
  }
}

/**
 * Most replicas of one expert a GPU may hold: 1 unless the expert has more replicas than the
 * scope has GPUs, then as few as possible (`ceil(count / numGpus)`).
 *
 * @example
 * ```ts
 * replicaCap(3, 8); // 1
 * replicaCap(9, 8); // 2
 * ```
 */
export function replicaCap(count: number, numGpus: number): number {
  return count <= numGpus ? 1 : Math.ceil(count / numGpus);
}

/**
 * Largest GPU load of the scope's current assignment (`gpuLoad` must be current).
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(3, 2, 2);
 * ws.weight.set([90, 30, 40]);
 * ws.count.set([2, 1, 1]);
 * packScope(ws);
 * scopeMaxLoad(ws); // 85: GPU 0 holds 45 + 40
 * ```
 */
export function scopeMaxLoad(ws: ScopeWorkspace): number {
  let max = 0;
  for (let g = 0; g < ws.numGpus; g++) if (ws.gpuLoad[g] > max) max = ws.gpuLoad[g];
  return max;
}

/**
 * The bound no assignment with the current counts can beat: `max(total / numGpus, largest
 * replica load)`. Also refreshes `replicaLoad` from `weight` and `count`.
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(3, 2, 2);
 * ws.weight.set([90, 30, 40]);
 * ws.count.set([2, 1, 1]);
 * // 2 GPUs: max(160 / 2, 90 / 2, 40) = 80
 * scopeLowerBound(ws); // 80
 * ```
 */
export function scopeLowerBound(ws: ScopeWorkspace): number {
  const { numExperts: n, weight, count, replicaLoad } = ws;
  let total = 0;
  let maxReplica = 0;
  for (let e = 0; e < n; e++) {
    total += weight[e];
    const r = weight[e] / count[e];
    replicaLoad[e] = r;
    if (r > maxReplica) maxReplica = r;
  }
  return Math.max(total / ws.numGpus, maxReplica);
}

/**
 * Greedy packing of the scope's replicas (largest first, each to the lightest GPU that still has
 * a free slot) that never puts two replicas of one expert on one GPU unless the expert has more
 * replicas than GPUs (then at most {@link replicaCap} per GPU). With home nodes (`gpusPerNode >
 * 0`), each expert's first replica goes to its home node and every node keeps enough free slots
 * for the home replicas still to come.
 *
 * When the caps cannot be met (late small replicas and too few GPUs with room), the replica goes
 * to the GPU with the fewest copies of its expert; {@link repairDuplicates} fixes that afterwards.
 * Ties go to the lowest GPU index, so the result is deterministic.
 *
 * Reads `weight` and `count`; writes `replicaLoad`, `slotExpert`, `gpuLoad` (and `homeCount`).
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(3, 2, 2);
 * ws.weight.set([90, 30, 40]);
 * ws.count.set([2, 1, 1]);
 * packScope(ws);
 * // ws.slotExpert = [0, 2, 0, 1]: GPU 0 holds 45 + 40 = 85, GPU 1 holds 45 + 30 = 75
 * ```
 */
export function packScope(ws: ScopeWorkspace): void {
  const { numExperts: n, numGpus: G, slotsPerGpu: S } = ws;
  const { weight, count, replicaLoad, itemExpert, itemLoad, order, gpuLoad, gpuFill, gpuStamp } =
    ws;
  const P = G * S;
  let k = 0;
  for (let e = 0; e < n; e++) {
    const r = weight[e] / count[e];
    replicaLoad[e] = r;
    for (let j = 0; j < count[e]; j++) {
      itemExpert[k] = e;
      itemLoad[k] = r;
      k++;
    }
  }
  // Stable radix order: an expert's replicas are generated together and stay adjacent.
  orderDescending(itemLoad, P, order, ws.orderWorkspace);
  gpuLoad.fill(0, 0, G);
  gpuFill.fill(0, 0, G);
  gpuStamp.fill(-1, 0, G);
  if (ws.gpusPerNode > 0) packWithHomes(ws);
  else packFree(ws);
}

/** Places replica `e` on GPU `g` and updates fill, load and the per-expert copy stamp. */
function place(ws: ScopeWorkspace, g: number, e: number): void {
  ws.slotExpert[g * ws.slotsPerGpu + ws.gpuFill[g]] = e;
  ws.gpuFill[g]++;
  ws.gpuLoad[g] += ws.replicaLoad[e];
  if (ws.gpuStamp[g] === e) ws.gpuMult[g]++;
  else {
    ws.gpuStamp[g] = e;
    ws.gpuMult[g] = 1;
  }
}

/**
 * Without home nodes: a (load, index) min-heap of GPUs with free slots. GPUs already holding
 * their cap of the current expert are popped aside and pushed back after the placement; there
 * are fewer of them than the expert's replicas, so this stays O(P log G).
 */
function packFree(ws: ScopeWorkspace): void {
  const { numGpus: G, slotsPerGpu: S, count, itemExpert, order, gpuLoad, gpuFill } = ws;
  const { gpuStamp, gpuMult, gpuHeap: heap, blocked } = ws;
  const P = G * S;
  for (let g = 0; g < G; g++) heap[g] = g;
  let size = G;
  let current = -1;
  let cap = 1;
  for (let t = 0; t < P; t++) {
    const e = itemExpert[order[t]];
    if (e !== current) {
      current = e;
      cap = replicaCap(count[e], G);
    }
    let nb = 0;
    let g = -1;
    while (size > 0) {
      const top = heap[0];
      if (gpuStamp[top] !== e || gpuMult[top] < cap) {
        g = top;
        size = heapPop(heap, size, gpuLoad);
        break;
      }
      blocked[nb++] = top;
      size = heapPop(heap, size, gpuLoad);
    }
    if (g < 0) {
      // Every GPU with room holds the cap already: take the fewest copies, then the lightest.
      let pick = 0;
      for (let i = 1; i < nb; i++) {
        const a = blocked[i];
        const b = blocked[pick];
        if (gpuMult[a] < gpuMult[b] || (gpuMult[a] === gpuMult[b] && gpuLoad[a] < gpuLoad[b]))
          pick = i;
      }
      g = blocked[pick];
      blocked[pick] = blocked[--nb];
    }
    place(ws, g, e);
    if (gpuFill[g] < S) size = heapPush(heap, size, g, gpuLoad);
    for (let i = 0; i < nb; i++) size = heapPush(heap, size, blocked[i], gpuLoad);
  }
}

function heapLess(a: number, b: number, key: Float64Array): boolean {
  return key[a] < key[b] || (key[a] === key[b] && a < b);
}

function heapPop(heap: Int32Array, size: number, key: Float64Array): number {
  const last = heap[--size];
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= size) break;
    const right = left + 1;
    const child = right < size && heapLess(heap[right], heap[left], key) ? right : left;
    if (!heapLess(heap[child], last, key)) break;
    heap[i] = heap[child];
    i = child;
  }
  if (size > 0) heap[i] = last;
  return size;
}

function heapPush(heap: Int32Array, size: number, node: number, key: Float64Array): number {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!heapLess(node, heap[parent], key)) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = node;
  return size + 1;
}

/**
 * With home nodes, in two passes. First each expert's home replica, largest first, to the
 * lightest GPU of its home node: that load is forced, so it is laid down before anything else
 * fills those GPUs. Then the other replicas, largest first, to the lightest GPU anywhere that has
 * room and is below the expert's cap. A linear scan per replica (the relaxed hierarchy is the
 * only user).
 */
function packWithHomes(ws: ScopeWorkspace): void {
  const { numExperts: n, numGpus: G, slotsPerGpu: S, gpusPerNode: gpn } = ws;
  const { count, itemExpert, order, gpuLoad, gpuFill, gpuStamp, gpuMult, home, homeCount } = ws;
  const P = G * S;
  homeCount.fill(0, 0, n);
  let current = -1;
  for (let t = 0; t < P; t++) {
    const e = itemExpert[order[t]];
    if (e === current) continue;
    current = e;
    let best = -1;
    for (let g = home[e] * gpn; g < (home[e] + 1) * gpn; g++) {
      if (gpuFill[g] < S && (best < 0 || gpuLoad[g] < gpuLoad[best])) best = g;
    }
    place(ws, best, e);
    ws.homeGpu[e] = best;
    homeCount[e]++;
  }
  current = -1;
  let cap = 1;
  for (let t = 0; t < P; t++) {
    const e = itemExpert[order[t]];
    if (e !== current) {
      // The first replica is the home one, already placed; count it on its GPU.
      current = e;
      cap = replicaCap(count[e], G);
      gpuStamp[ws.homeGpu[e]] = e;
      gpuMult[ws.homeGpu[e]] = 1;
      continue;
    }
    let best = -1;
    let fallback = -1;
    for (let g = 0; g < G; g++) {
      if (gpuFill[g] === S) continue;
      const m = gpuStamp[g] === e ? gpuMult[g] : 0;
      if (m < cap) {
        if (best < 0 || gpuLoad[g] < gpuLoad[best]) best = g;
      } else if (fallback < 0 || gpuMult[g] < gpuMult[fallback]) fallback = g;
    }
    const g = best >= 0 ? best : fallback;
    place(ws, g, e);
    if (((g / gpn) | 0) === home[e]) homeCount[e]++;
  }
}

/**
 * Recomputes `gpuLoad` (and `homeCount` with home nodes) from `slotExpert` and `replicaLoad`.
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(3, 2, 2);
 * ws.weight.set([90, 30, 40]);
 * ws.count.set([2, 1, 1]);
 * packScope(ws); // ws.gpuLoad = [85, 75]
 * ws.slotExpert.set([0, 0, 1, 2]); // edited by hand
 * recomputeScopeLoads(ws); // ws.gpuLoad = [90, 70]
 * ```
 */
export function recomputeScopeLoads(ws: ScopeWorkspace): void {
  const { numGpus: G, slotsPerGpu: S, slotExpert, replicaLoad, gpuLoad, gpusPerNode } = ws;
  if (gpusPerNode > 0) ws.homeCount.fill(0, 0, ws.numExperts);
  for (let g = 0; g < G; g++) {
    let sum = 0;
    for (let k = 0; k < S; k++) {
      const e = slotExpert[g * S + k];
      sum += replicaLoad[e];
      if (gpusPerNode > 0 && ((g / gpusPerNode) | 0) === ws.home[e]) ws.homeCount[e]++;
    }
    gpuLoad[g] = sum;
  }
}

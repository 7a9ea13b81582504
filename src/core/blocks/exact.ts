import { EplbInputError, requireInteger } from "../model/errors.js";
import { replicaCap, type ScopeWorkspace } from "./scope.js";

/** Largest instances {@link solveExact} accepts: it enumerates, so it is for tiny cases only. */
export const EXACT_LIMITS = { experts: 12, replicas: 24, gpus: 12 } as const;

/** Options of {@link solveExact}. */
export interface ExactOptions {
  /**
   * Allow two replicas of one expert on one GPU even when the expert has no more replicas than
   * there are GPUs. Default false: the same rule as the balanced policy (at most
   * `ceil(count / numGpus)` replicas of an expert per GPU).
   */
  allowDuplicates?: boolean;
  /** Search nodes before giving up the proof of optimality. Default 20 million. */
  maxNodes?: number;
}

/** An optimal plan of one layer on one scope (all GPUs, no nodes or groups). */
export interface ExactSolution {
  /** The smallest achievable max GPU load. */
  maxGpuLoad: number;
  /** Replica count of each expert in the optimal plan found. */
  counts: number[];
  /** Expert of each slot, GPU-major (`numReplicas / numGpus` slots per GPU). */
  phy2log: number[];
  /** False when `maxNodes` ran out: `maxGpuLoad` is then only an upper bound. */
  proven: boolean;
  /** Search nodes visited. */
  nodes: number;
}

/** Search state, kept in one object so the recursion allocates nothing. */
interface Search {
  loads: ArrayLike<number>;
  n: number;
  P: number;
  G: number;
  S: number;
  allowDuplicates: boolean;
  maxNodes: number;
  nodes: number;
  best: number;
  bestCounts: Int32Array;
  bestSlots: Int32Array;
  counts: Int32Array;
  // Packing of the current count vector.
  itemExpert: Int32Array;
  itemLoad: Float64Array;
  suffix: Float64Array;
  itemGpu: Int32Array;
  gpuLoad: Float64Array;
  gpuFill: Int32Array;
  gpuCopies: Int32Array;
  slots: Int32Array;
  leafFill: Int32Array;
}

/**
 * The exact optimum of one layer for tiny instances: the replica counts and placement that
 * minimise the max GPU load, by enumerating every count vector (each expert at least one
 * replica, `numReplicas` in all) and, for those whose bound can beat the best plan so far,
 * branch and bound over placements. Placements respect the balanced policy's rule on duplicates
 * unless `allowDuplicates`. Loads are summed per GPU in float64 like the metrics.
 *
 * Symmetries are cut so each plan is met once up to GPU relabelling: replicas of one expert go to
 * GPUs in non-decreasing index order, and a replica opens at most one empty GPU (the lowest).
 * Meant for tests and studies (up to {@link EXACT_LIMITS}); the policies never call it.
 *
 * @example
 * ```ts
 * solveExact([600, 560, 120, 120, 20, 10, 10, 10], 16, 8);
 * // { maxGpuLoad: 196.666..., counts: [5, 3, 2, 2, 1, 1, 1, 1] (one of several optima), proven: true, ... }
 * ```
 */
export function solveExact(
  loads: ArrayLike<number>,
  numReplicas: number,
  numGpus: number,
  options: ExactOptions = {},
): ExactSolution {
  const n = loads.length;
  if (n < 1) throw new EplbInputError("loads", loads, "must hold at least one expert");
  if (n > EXACT_LIMITS.experts) {
    throw new EplbInputError(
      "loads.length",
      n,
      `must be <= ${EXACT_LIMITS.experts} for the exact solver (tiny instances only)`,
    );
  }
  for (let e = 0; e < n; e++) {
    const v = loads[e];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new EplbInputError(`loads[${e}]`, v, "must be a finite number >= 0");
    }
  }
  requireInteger("numReplicas", numReplicas, 1);
  requireInteger("numGpus", numGpus, 1);
  if (numReplicas > EXACT_LIMITS.replicas) {
    throw new EplbInputError(
      "numReplicas",
      numReplicas,
      `must be <= ${EXACT_LIMITS.replicas} for the exact solver (tiny instances only)`,
    );
  }
  if (numGpus > EXACT_LIMITS.gpus) {
    throw new EplbInputError(
      "numGpus",
      numGpus,
      `must be <= ${EXACT_LIMITS.gpus} for the exact solver (tiny instances only)`,
    );
  }
  if (numReplicas % numGpus !== 0) {
    throw new EplbInputError("numGpus", numGpus, `must divide numReplicas (${numReplicas})`);
  }
  if (numReplicas < n) {
    throw new EplbInputError("numReplicas", numReplicas, `must be >= the number of experts (${n})`);
  }
  const P = numReplicas;
  const G = numGpus;
  const s: Search = {
    loads,
    n,
    P,
    G,
    S: P / G,
    allowDuplicates: options.allowDuplicates ?? false,
    maxNodes: options.maxNodes ?? 20_000_000,
    nodes: 0,
    best: Number.POSITIVE_INFINITY,
    bestCounts: new Int32Array(n),
    bestSlots: new Int32Array(P),
    counts: new Int32Array(n),
    itemExpert: new Int32Array(P),
    itemLoad: new Float64Array(P),
    suffix: new Float64Array(P + 1),
    itemGpu: new Int32Array(P),
    gpuLoad: new Float64Array(G),
    gpuFill: new Int32Array(G),
    gpuCopies: new Int32Array(G * n),
    slots: new Int32Array(P),
    leafFill: new Int32Array(G),
  };
  roundRobinIncumbent(s);
  enumerateCounts(s, 0, P);
  const best = s.best;
  return {
    maxGpuLoad: best,
    counts: Array.from(s.bestCounts),
    phy2log: Array.from(s.bestSlots),
    proven: s.nodes <= s.maxNodes,
    nodes: s.nodes,
  };
}

/** Max GPU load of GPU-major slots, summed in slot order like the metrics. */
function slotsMax(s: Search, slots: Int32Array, counts: Int32Array): number {
  let max = 0;
  for (let g = 0; g < s.G; g++) {
    let sum = 0;
    for (let k = 0; k < s.S; k++) {
      const e = slots[g * s.S + k];
      sum += s.loads[e] / counts[e];
    }
    if (sum > max) max = sum;
  }
  return max;
}

/**
 * A valid first plan, so the search has a bound from the start: counts by water-filling,
 * replicas dealt to GPUs round-robin (expert by expert, which respects the duplicate rule).
 */
function roundRobinIncumbent(s: Search): void {
  const { n, P, loads, counts } = s;
  counts.fill(1);
  for (let r = n; r < P; r++) {
    let top = 0;
    for (let e = 1; e < n; e++) if (loads[e] / counts[e] > loads[top] / counts[top]) top = e;
    counts[top]++;
  }
  let k = 0;
  for (let e = 0; e < n; e++) {
    for (let c = 0; c < counts[e]; c++) {
      // Item k goes to GPU k mod G, at that GPU's next slot.
      const g = k % s.G;
      s.bestSlots[g * s.S + Math.floor(k / s.G)] = e;
      k++;
    }
  }
  s.bestCounts.set(counts);
  s.best = slotsMax(s, s.bestSlots, counts);
}

/** Enumerates count vectors for experts `e..`, `left` replicas still to give. */
function enumerateCounts(s: Search, e: number, left: number): void {
  if (s.nodes > s.maxNodes) return;
  const { n, loads, counts } = s;
  if (e === n - 1) {
    counts[e] = left;
    if (loads[e] / left < s.best) packCounts(s);
    return;
  }
  const most = left - (n - 1 - e);
  for (let c = most; c >= 1; c--) {
    // Fewer replicas only raise this expert's replica load.
    if (loads[e] / c >= s.best) break;
    counts[e] = c;
    enumerateCounts(s, e + 1, left - c);
  }
}

/** Branch and bound over placements of the current count vector, if its bound can win. */
function packCounts(s: Search): void {
  const { n, P, G, S, loads, counts, itemExpert, itemLoad, suffix } = s;
  // Items sorted by load descending, an expert's replicas together (insertion by expert).
  let k = 0;
  let total = 0;
  for (let e = 0; e < n; e++) {
    const v = loads[e] / counts[e];
    total += loads[e];
    for (let c = 0; c < counts[e]; c++) {
      let i = k++;
      while (i > 0 && itemLoad[i - 1] < v) {
        itemLoad[i] = itemLoad[i - 1];
        itemExpert[i] = itemExpert[i - 1];
        i--;
      }
      itemLoad[i] = v;
      itemExpert[i] = e;
    }
  }
  suffix[P] = 0;
  for (let i = P - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + itemLoad[i];
  // The largest replica's GPU also holds S - 1 others, at least the S - 1 smallest.
  const bound = Math.max(total / G, itemLoad[0] + suffix[P - (S - 1)]);
  if (bound >= s.best * (1 - 1e-12)) return;
  s.gpuLoad.fill(0);
  s.gpuFill.fill(0);
  s.gpuCopies.fill(0);
  place(s, 0, 0);
}

/** Places item `t`; `used` GPUs (0..used-1) are non-empty. */
function place(s: Search, t: number, used: number): void {
  s.nodes++;
  if (s.nodes > s.maxNodes) return;
  const { P, G, S, n, itemExpert, itemLoad, itemGpu, gpuLoad, gpuFill, gpuCopies, suffix } = s;
  if (t === P) {
    // Re-sum in slot order so the figure matches the metrics to the last bit.
    const { slots, leafFill } = s;
    leafFill.fill(0);
    for (let i = 0; i < P; i++) {
      const g = itemGpu[i];
      slots[g * S + leafFill[g]++] = itemExpert[i];
    }
    const exact = slotsMax(s, slots, s.counts);
    if (exact < s.best) {
      s.best = exact;
      s.bestCounts.set(s.counts);
      s.bestSlots.set(slots);
    }
    return;
  }
  // Every open GPU must still take its free slots' worth of the smallest remaining items.
  for (let g = 0; g < used; g++) {
    const free = S - gpuFill[g];
    if (free > 0 && gpuLoad[g] + suffix[P - free] - suffix[P] >= s.best * (1 - 1e-12)) return;
  }
  const e = itemExpert[t];
  const v = itemLoad[t];
  const count = s.counts[e];
  const cap = s.allowDuplicates ? S : count <= G ? 1 : Math.ceil(count / G);
  // Replicas of one expert go to non-decreasing GPU indices (they are interchangeable).
  const from = t > 0 && itemExpert[t - 1] === e ? itemGpu[t - 1] : 0;
  const limit = Math.min(used + 1, G);
  for (let g = from; g < limit; g++) {
    if (gpuFill[g] === S || gpuCopies[g * n + e] >= cap) continue;
    if (gpuLoad[g] + v >= s.best * (1 - 1e-12)) continue;
    gpuLoad[g] += v;
    gpuFill[g]++;
    gpuCopies[g * n + e]++;
    itemGpu[t] = g;
    place(s, t + 1, g === used ? used + 1 : used);
    gpuLoad[g] -= v;
    gpuFill[g]--;
    gpuCopies[g * n + e]--;
    if (s.nodes > s.maxNodes) return;
  }
}

/** Reusable buffers and counters of {@link improveScopeExact}. */
export class ExactWorkspace {
  /** Search nodes visited since the workspace was made (never reset: read differences). */
  nodes = 0;
  /** Whether the last {@link improveScopeExact} finished its search within its node budget. */
  proven = false;
  order = new Int32Array(0);
  suffix = new Float64Array(0);
  counts = new Int32Array(0);
  bestCounts = new Int32Array(0);
  gpuLoad = new Float64Array(0);
  gpuFill = new Int32Array(0);
  /** Per depth (expert in `order`): copies on each GPU, the GPUs in the order tried, ties. */
  mult = new Int32Array(0);
  bestMult = new Int32Array(0);
  gpus = new Int32Array(0);
  same = new Int32Array(0);
  // State of the running search (kept here so the recursion allocates nothing).
  weight: Float64Array = new Float64Array(0);
  n = 0;
  G = 0;
  S = 0;
  threshold = 0;
  best = 0;
  found = false;
  nodeLimit = 0;

  ensure(n: number, G: number): void {
    if (this.order.length < n) {
      this.order = new Int32Array(n);
      this.suffix = new Float64Array(n + 1);
      this.counts = new Int32Array(n);
      this.bestCounts = new Int32Array(n);
    }
    if (this.gpuLoad.length < G) {
      this.gpuLoad = new Float64Array(G);
      this.gpuFill = new Int32Array(G);
    }
    if (this.mult.length < n * G) {
      this.mult = new Int32Array(n * G);
      this.bestMult = new Int32Array(n * G);
      this.gpus = new Int32Array(n * G);
      this.same = new Int32Array(n * G);
    }
  }
}

/**
 * Branch and bound over replica counts and placement together, for scopes with few GPUs: looks
 * for a plan of the scope in `scope` (weights set, no home nodes) whose max GPU load is below
 * `incumbent`, and writes the best one found into the scope (`count`, `slotExpert`,
 * `replicaLoad`, `gpuLoad`) if there is one. Experts are taken heaviest first; each gets a
 * replica count (fewest first) and copies per GPU within {@link replicaCap}, lightest GPUs first,
 * GPUs in identical states interchangeable (symmetry cut). A branch stops as soon as a GPU
 * would reach the best load so far or the remaining load no longer fits below it on the GPUs
 * with free slots.
 *
 * At most `maxNodes` search nodes (`ws.nodes` counts them): the cost is bounded whatever the
 * loads; `ws.proven` tells whether the search finished, i.e. no duplicate-free plan beats the
 * result. Returns whether the scope was improved. Deterministic.
 *
 * @example
 * ```ts
 * // the example on 8 GPUs of 2 slots, below deepseek's 232
 * const scope = new ScopeWorkspace();
 * scope.reset(8, 8, 2);
 * scope.weight.set([600, 560, 120, 120, 20, 10, 10, 10]);
 * improveScopeExact(scope, 232, 100000, new ExactWorkspace());
 * // true: scopeMaxLoad(scope) = 196.666... (counts 4, 3, 3, 1, 1, 2, 1, 1), proven optimal
 * ```
 */
export function improveScopeExact(
  scope: ScopeWorkspace,
  incumbent: number,
  maxNodes: number,
  ws: ExactWorkspace,
): boolean {
  const { numExperts: n, numGpus: G, slotsPerGpu: S, weight } = scope;
  ws.proven = false;
  if (n < 1 || G < 1 || !(incumbent > 0) || scope.gpusPerNode > 0) return false;
  ws.ensure(n, G);
  const { order, suffix } = ws;
  for (let e = 0; e < n; e++) {
    let i = e;
    while (i > 0 && weight[order[i - 1]] < weight[e]) {
      order[i] = order[i - 1];
      i--;
    }
    order[i] = e;
  }
  suffix[n] = 0;
  for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + weight[order[i]];
  ws.weight = weight;
  ws.n = n;
  ws.G = G;
  ws.S = S;
  ws.best = incumbent;
  ws.threshold = incumbent * (1 - 1e-12);
  ws.found = false;
  ws.nodeLimit = ws.nodes + maxNodes;
  ws.gpuLoad.fill(0, 0, G);
  ws.gpuFill.fill(0, 0, G);
  ws.mult.fill(0, 0, n * G);
  exactExpert(ws, 0, G * S);
  ws.proven = ws.nodes <= ws.nodeLimit;
  if (!ws.found) return false;
  // Write the plan: each GPU's replicas heaviest first, loads summed in slot order.
  const { count, slotExpert, replicaLoad, gpuLoad } = scope;
  for (let e = 0; e < n; e++) {
    count[e] = ws.bestCounts[e];
    replicaLoad[e] = weight[e] / count[e];
  }
  for (let g = 0; g < G; g++) {
    let k = g * S;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = order[i];
      for (let m = ws.bestMult[i * G + g]; m > 0; m--) {
        slotExpert[k++] = e;
        sum += replicaLoad[e];
      }
    }
    gpuLoad[g] = sum;
  }
  return true;
}

/** Gives expert `order[i]` its count and copies, `slotsLeft` slots still free. */
function exactExpert(ws: ExactWorkspace, i: number, slotsLeft: number): void {
  if (++ws.nodes > ws.nodeLimit) return;
  const { n, G, gpuLoad, gpuFill, S } = ws;
  const limit = ws.threshold;
  if (i === n) {
    let max = 0;
    for (let g = 0; g < G; g++) if (gpuLoad[g] > max) max = gpuLoad[g];
    if (max < limit) {
      ws.best = max;
      ws.threshold = max * (1 - 1e-12);
      ws.found = true;
      ws.bestCounts.set(ws.counts.subarray(0, n));
      ws.bestMult.set(ws.mult.subarray(0, n * G));
    }
    return;
  }
  const e = ws.order[i];
  const w = ws.weight[e];
  // The remaining load must fit below the limit on the GPUs that still have free slots, each
  // free slot holding at most the heaviest remaining expert's load.
  let room = 0;
  for (let g = 0; g < G; g++) {
    const free = S - gpuFill[g];
    if (free > 0) room += Math.min(limit - gpuLoad[g], free * w);
  }
  if (ws.suffix[i] > room) return;
  // GPUs lightest first (then fuller, then lower index); equal states are interchangeable.
  const base = i * G;
  const { gpus, same } = ws;
  for (let g = 0; g < G; g++) {
    let k = g;
    while (
      k > 0 &&
      (gpuLoad[gpus[base + k - 1]] > gpuLoad[g] ||
        (gpuLoad[gpus[base + k - 1]] === gpuLoad[g] && gpuFill[gpus[base + k - 1]] < gpuFill[g]))
    ) {
      gpus[base + k] = gpus[base + k - 1];
      k--;
    }
    gpus[base + k] = g;
  }
  for (let k = 0; k < G; k++) {
    const g = gpus[base + k];
    const h = k > 0 ? gpus[base + k - 1] : -1;
    same[base + k] = h >= 0 && gpuLoad[h] === gpuLoad[g] && gpuFill[h] === gpuFill[g] ? 1 : 0;
  }
  const rest = n - 1 - i;
  let cmin = Math.max(1, Math.floor(w / limit) + 1);
  let cmax = slotsLeft - rest;
  // Experts of equal load are interchangeable: their counts need only be non-increasing.
  if (i > 0 && ws.weight[ws.order[i - 1]] === w) cmax = Math.min(cmax, ws.counts[ws.order[i - 1]]);
  if (rest === 0) {
    if (cmax < slotsLeft) return;
    cmin = Math.max(cmin, cmax);
  } else cmax = Math.min(cmax, G * S);
  for (let c = cmin; c <= cmax && ws.nodes <= ws.nodeLimit; c++) {
    ws.counts[e] = c;
    exactCopies(ws, i, 0, c, w / c, replicaCap(c, G), slotsLeft - c);
  }
}

/** Spreads the `left` copies of expert `order[i]` (load `v` each) over GPUs `k..` of its order. */
function exactCopies(
  ws: ExactWorkspace,
  i: number,
  k: number,
  left: number,
  v: number,
  cap: number,
  slotsAfter: number,
): void {
  if (left === 0) {
    exactExpert(ws, i + 1, slotsAfter);
    return;
  }
  const { G, S, gpuLoad, gpuFill, mult } = ws;
  if (k === G || ++ws.nodes > ws.nodeLimit) return;
  const base = i * G;
  const g = ws.gpus[base + k];
  let hi = Math.min(cap, S - gpuFill[g], left);
  const limit = ws.threshold;
  while (hi > 0 && gpuLoad[g] + hi * v >= limit) hi--;
  // A GPU in the same state as the previous one takes no more copies than it (symmetry).
  if (ws.same[base + k]) hi = Math.min(hi, mult[base + ws.gpus[base + k - 1]]);
  const load = gpuLoad[g];
  for (let m = hi; m >= 0; m--) {
    mult[base + g] = m;
    gpuLoad[g] = load + m * v;
    gpuFill[g] += m;
    exactCopies(ws, i, k + 1, left - m, v, cap, slotsAfter);
    gpuFill[g] -= m;
    if (ws.nodes > ws.nodeLimit) break;
  }
  gpuLoad[g] = load;
  mult[base + g] = 0;
}

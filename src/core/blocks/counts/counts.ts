import { OrderWorkspace, orderDescending } from "../order.js";
import { ReplicationWorkspace } from "../replication.js";

/** Reusable buffers for {@link searchReplicaCounts} and friends. */
export class CountsWorkspace {
  /** For `waterFillCounts` (replication.ts). */
  readonly replication = new ReplicationWorkspace();
  key = new Float64Array(0);
  trial = new Int32Array(0);
  trialOrder = new Int32Array(0);
  replicaLoad = new Float64Array(0);
  gpuHeap = new Int32Array(0);
  gpuLoad = new Float64Array(0);
  gpuFill = new Int32Array(0);
  gpuStamp = new Int32Array(0);
  gpuMult = new Int32Array(0);
  blocked = new Int32Array(0);
  itemExpert = new Int32Array(0);
  itemGpu = new Int32Array(0);
  hot = new Int32Array(0);
  receivers = new Int32Array(0);
  donors = new Int32Array(0);
  mark = new Int32Array(0);
  beam = new Int32Array(0);
  nextBeam = new Int32Array(0);
  beamOrder = new Int32Array(0);
  nextBeamOrder = new Int32Array(0);
  zobrist = new Int32Array(0);
  childValue = new Float64Array(0);
  childAtMax = new Int32Array(0);
  childParent = new Int32Array(0);
  childDonor = new Int32Array(0);
  childReceiver = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();
  /** Hashes of the count vectors a search has estimated. */
  readonly seen = new Set<number>();
  /** Experts on the hottest GPU of the last estimate, and how many. */
  hotCount = 0;
  /** GPUs within tolerance of the maximum in the last estimate. */
  atMax = 0;
  /**
   * Work units spent by {@link searchReplicaCounts} on this workspace since it was made (each
   * scored count vector adds its `trialCost`); never reset, so callers read differences.
   */
  work = 0;

  /** Grows the beam buffers for `width` count vectors of `numExperts`. */
  ensureBeam(numExperts: number, width: number): void {
    if (this.beam.length < numExperts * width) {
      this.beam = new Int32Array(numExperts * width);
      this.nextBeam = new Int32Array(numExperts * width);
      this.beamOrder = new Int32Array(numExperts * width);
      this.nextBeamOrder = new Int32Array(numExperts * width);
    }
    if (this.zobrist.length < 2 * numExperts) {
      // Fixed pseudo-random constants (an LCG), so hashes and hence results are deterministic.
      this.zobrist = new Int32Array(2 * numExperts);
      let x = 0x2545f491;
      for (let i = 0; i < this.zobrist.length; i++) {
        x = (Math.imul(x, 1664525) + 1013904223) | 0;
        this.zobrist[i] = (x >>> 6) & 0x3ffffff;
      }
    }
    if (this.childValue.length < width) {
      this.childValue = new Float64Array(width);
      this.childAtMax = new Int32Array(width);
      this.childParent = new Int32Array(width);
      this.childDonor = new Int32Array(width);
      this.childReceiver = new Int32Array(width);
    }
  }

  ensure(numExperts: number, numSlots: number, numGpus: number): void {
    if (this.trial.length < numExperts) {
      this.key = new Float64Array(numExperts);
      this.trial = new Int32Array(numExperts);
      this.trialOrder = new Int32Array(numExperts);
      this.replicaLoad = new Float64Array(numExperts);
      this.receivers = new Int32Array(numExperts);
      this.donors = new Int32Array(numExperts);
      this.mark = new Int32Array(numExperts);
    }
    if (this.itemExpert.length < numSlots) {
      this.itemExpert = new Int32Array(numSlots);
      this.itemGpu = new Int32Array(numSlots);
      this.hot = new Int32Array(numSlots);
    }
    if (this.gpuHeap.length < numGpus) {
      this.gpuHeap = new Int32Array(numGpus);
      this.gpuLoad = new Float64Array(numGpus);
      this.gpuFill = new Int32Array(numGpus);
      this.gpuStamp = new Int32Array(numGpus);
      this.gpuMult = new Int32Array(numGpus);
      this.blocked = new Int32Array(numGpus);
    }
  }
}

/** Whether expert `a` sorts before `b`: larger replica load, or equal and lower index. */
function before(a: number, b: number, load: Float64Array): boolean {
  return load[a] > load[b] || (load[a] === load[b] && a < b);
}

/**
 * Writes into `order[0..n)` the experts sorted by replica load `weight / count` descending (ties:
 * lower index first), exactly in float64, and their replica loads into `ws.replicaLoad`.
 */
function sortByReplicaLoad(
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
function reorder(
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
function estimateSorted(
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

/** Limits of {@link searchReplicaCounts}. */
export interface CountSearchOptions {
  /** Stop once the estimate is at most this (e.g. the lower bound plus epsilon). */
  target: number;
  /** Most count vectors estimated in all. */
  maxTrials: number;
  /** Receivers and donors considered per state beyond the hottest GPU's experts. */
  breadth: number;
  /** Count vectors kept per step (beam width); 1 is a plain walk. */
  beamWidth: number;
  /** Steps without a new best before giving up. */
  patience: number;
  /**
   * Most work units this search may spend (each scored count vector costs `trialCost`); with
   * `maxTrials` it bounds the search whatever the loads. Default: no limit beyond `maxTrials`.
   */
  maxWork?: number;
  /**
   * Work units one scored count vector costs. Default `numExperts + P * max(1, ceil(log2(numGpus))
   * / 2)` with `P = numGpus * slotsPerGpu` (just `numExperts` with one or two slots per GPU),
   * about what {@link estimateMaxLoad} does after the O(n) re-sort.
   */
  trialCost?: number;
  /**
   * Scores a count vector instead of {@link estimateMaxLoad} (e.g. by the real packing, for tiny
   * scopes where that is cheap). Must set `ws.hot`, `ws.hotCount` and `ws.atMax` like it.
   */
  evaluate?: (count: Int32Array, ws: CountsWorkspace) => number;
}

/**
 * Joint search of replica counts and packing. Starting from `count` (e.g. water-filling), each
 * step moves one replica from a donor expert to a receiver expert in every kept count vector,
 * estimates every result ({@link estimateMaxLoad}: largest GPU load, ties broken by fewer GPUs
 * at it) and keeps the `beamWidth` best vectors not seen before, even when they are worse: a
 * beam search that walks out of the local minima where a descent stops. Receivers are the
 * hottest GPU's experts, the experts with the largest replica loads and a few "fillers" whose
 * extra replica would be lightest (light replicas are what heavy ones pair with); donors are the
 * hottest GPU's experts and the experts (with two or more replicas) that lose least by giving one
 * up.
 * Each kept vector carries its experts sorted by replica load, so a trial re-sorts only the two
 * experts that changed. Deterministic.
 *
 * Why it pays with few slots per GPU: with two slots the best packing pairs largest with smallest
 * replicas, so splitting a mid-sized expert into small replicas (taken from a hot expert) can
 * lower every pair, which no exchange of replicas can do.
 *
 * Leaves the best count vector found in `count` and returns its estimate.
 *
 * @example
 * ```ts
 * const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
 * const count = new Int32Array(8);
 * waterFillCounts(w, 8, 16, count); // counts 5,5,1,1,1,1,1,1: estimate 232
 * searchReplicaCounts(w, 8, count, 8, 2, {
 *   target: 0, maxTrials: 5000, breadth: 8, beamWidth: 4, patience: 8,
 * });
 * // 196.666...: an optimal count vector
 * ```
 */
export function searchReplicaCounts(
  weight: ArrayLike<number>,
  numExperts: number,
  count: Int32Array,
  numGpus: number,
  slotsPerGpu: number,
  options: CountSearchOptions,
  ws: CountsWorkspace = new CountsWorkspace(),
): number {
  const n = numExperts;
  const P = numGpus * slotsPerGpu;
  const B = Math.max(1, options.beamWidth);
  ws.ensure(n, P, numGpus);
  ws.ensureBeam(n, B);
  const { trial, trialOrder, receivers, donors, mark, key, beam, beamOrder, zobrist } = ws;
  const { childValue, childAtMax, childParent, childDonor, childReceiver } = ws;
  const load = ws.replicaLoad;
  const seen = ws.seen;
  seen.clear();
  beam.set(count.subarray(0, n));
  sortByReplicaLoad(weight, n, count, beamOrder, ws);
  const evaluate = options.evaluate;
  // One or two slots per GPU: the estimate is a walk over the sorted experts, O(n); beyond, a
  // heap of GPUs per replica, O(P log G).
  const trialCost =
    options.trialCost ??
    (slotsPerGpu <= 2 ? n : n + P * Math.max(1, Math.ceil(Math.log2(numGpus)) / 2));
  // Trials this call may score: the smaller of maxTrials and the work budget (at least 1).
  const maxTrials = Math.max(
    1,
    Math.min(
      options.maxTrials,
      Math.floor((options.maxWork ?? Number.POSITIVE_INFINITY) / trialCost),
    ),
  );
  ws.work += trialCost;
  let best = evaluate
    ? evaluate(count, ws)
    : estimateSorted(n, count, beamOrder, numGpus, slotsPerGpu, ws);
  let bestAtMax = ws.atMax;
  seen.add(countsHash(count, n, zobrist));
  let beamSize = 1;
  let trials = 1;
  let stall = 0;
  let stamp = 0;
  mark.fill(-1, 0, n);
  while (best > options.target && trials < maxTrials && stall < options.patience) {
    let children = 0;
    for (let b = 0; b < beamSize && trials < maxTrials; b++) {
      const state = beam.subarray(b * n, b * n + n);
      const order = beamOrder.subarray(b * n, b * n + n);
      for (let e = 0; e < n; e++) load[e] = weight[e] / state[e];
      // Refresh the hottest GPU's experts of this state (the last estimate was another vector);
      // it costs a trial like any other.
      if (evaluate) evaluate(state, ws);
      else estimateSorted(n, state, order, numGpus, slotsPerGpu, ws);
      trials++;
      ws.work += trialCost;
      stamp++;
      let nr = 0;
      for (let i = 0; i < ws.hotCount; i++) {
        const e = ws.hot[i];
        if (mark[e] !== stamp) {
          mark[e] = stamp;
          receivers[nr++] = e;
        }
      }
      const hotEnd = nr;
      nr = topExperts(weight, n, state, 0, options.breadth, receivers, nr, mark, stamp, key);
      const fillers = Math.max(1, options.breadth >> 1);
      nr = topExperts(weight, n, state, 2, fillers, receivers, nr, mark, stamp, key);
      stamp++;
      let nd = 0;
      for (let i = 0; i < hotEnd; i++) {
        const e = receivers[i];
        if (state[e] >= 2 && mark[e] !== stamp) {
          mark[e] = stamp;
          donors[nd++] = e;
        }
      }
      nd = topExperts(weight, n, state, 1, options.breadth, donors, nd, mark, stamp, key);
      const baseHash = countsHash(state, n, zobrist);
      trial.set(state);
      for (let i = 0; i < nd && trials < maxTrials; i++) {
        const d = donors[i];
        for (let j = 0; j < nr && trials < maxTrials; j++) {
          const r = receivers[j];
          if (r === d) continue;
          const h = moveHash(baseHash, d, r, zobrist);
          if (seen.has(h)) continue;
          seen.add(h);
          trial[d]--;
          trial[r]++;
          load[d] = weight[d] / trial[d];
          load[r] = weight[r] / trial[r];
          reorder(order, n, d, r, trialOrder, ws);
          const v = evaluate
            ? evaluate(trial, ws)
            : estimateSorted(n, trial, trialOrder, numGpus, slotsPerGpu, ws);
          trial[d]++;
          trial[r]--;
          load[d] = weight[d] / trial[d];
          load[r] = weight[r] / trial[r];
          trials++;
          ws.work += trialCost;
          // Insert into the sorted list of the best B children (value, then GPUs at it).
          let pos = Math.min(children, B);
          while (pos > 0 && lessThan(v, ws.atMax, childValue[pos - 1], childAtMax[pos - 1])) pos--;
          if (pos >= B) continue;
          const last = children < B ? children : B - 1;
          for (let q = last; q > pos; q--) {
            childValue[q] = childValue[q - 1];
            childAtMax[q] = childAtMax[q - 1];
            childParent[q] = childParent[q - 1];
            childDonor[q] = childDonor[q - 1];
            childReceiver[q] = childReceiver[q - 1];
          }
          childValue[pos] = v;
          childAtMax[pos] = ws.atMax;
          childParent[pos] = b;
          childDonor[pos] = d;
          childReceiver[pos] = r;
          if (children < B) children++;
        }
      }
    }
    if (children === 0) break;
    const { nextBeam, nextBeamOrder } = ws;
    for (let q = 0; q < children; q++) {
      const p = childParent[q];
      const d = childDonor[q];
      const r = childReceiver[q];
      const child = nextBeam.subarray(q * n, q * n + n);
      child.set(beam.subarray(p * n, p * n + n));
      for (let e = 0; e < n; e++) load[e] = weight[e] / child[e];
      child[d]--;
      child[r]++;
      load[d] = weight[d] / child[d];
      load[r] = weight[r] / child[r];
      reorder(beamOrder.subarray(p * n, p * n + n), n, d, r, trialOrder, ws);
      nextBeamOrder.set(trialOrder.subarray(0, n), q * n);
    }
    beam.set(nextBeam.subarray(0, children * n));
    beamOrder.set(nextBeamOrder.subarray(0, children * n));
    beamSize = children;
    if (lessThan(childValue[0], childAtMax[0], best, bestAtMax)) {
      best = childValue[0];
      bestAtMax = childAtMax[0];
      count.set(beam.subarray(0, n));
      stall = 0;
    } else stall++;
  }
  return best;
}

/** Estimate order: lower value first (relative tolerance 1e-9), then fewer GPUs at it. */
function lessThan(v: number, atMax: number, w: number, wAtMax: number): boolean {
  const tol = Math.max(v, w) * 1e-9;
  return v < w - tol || (v <= w + tol && atMax < wAtMax);
}

/** A 52-bit hash of a count vector (two 26-bit Zobrist-style sums), for the seen set. */
function countsHash(count: ArrayLike<number>, n: number, zobrist: Int32Array): number {
  let lo = 0;
  let hi = 0;
  for (let e = 0; e < n; e++) {
    lo = (lo + count[e] * zobrist[2 * e]) & 0x3ffffff;
    hi = (hi + count[e] * zobrist[2 * e + 1]) & 0x3ffffff;
  }
  return hi * 0x4000000 + lo;
}

/** Hash of the vector `base` describes after moving one replica from `d` to `r`. */
function moveHash(base: number, d: number, r: number, zobrist: Int32Array): number {
  let lo = base % 0x4000000;
  let hi = Math.floor(base / 0x4000000);
  lo = (lo - zobrist[2 * d] + zobrist[2 * r]) & 0x3ffffff;
  hi = (hi - zobrist[2 * d + 1] + zobrist[2 * r + 1]) & 0x3ffffff;
  return hi * 0x4000000 + lo;
}

/**
 * Appends to `out` (from `used`) up to `k` unmarked experts: with `mode` 0 those with the largest
 * replica load `weight / count`; with `mode` 1 those (with two or more replicas) whose replica
 * load after giving one up, `weight / (count - 1)`, is smallest; with `mode` 2 those whose next
 * replica would be lightest, `weight / (count + 1)` (fillers: with few slots per GPU a light
 * replica is what a heavy one is best paired with). Partial selection, O(n * k).
 */
function topExperts(
  weight: ArrayLike<number>,
  n: number,
  count: Int32Array,
  mode: 0 | 1 | 2,
  k: number,
  out: Int32Array,
  used: number,
  mark: Int32Array,
  stamp: number,
  key: Float64Array,
): number {
  let m = used;
  for (let round = 0; round < k; round++) {
    let pick = -1;
    let pickKey = 0;
    for (let e = 0; e < n; e++) {
      if (mark[e] === stamp) continue;
      if (mode === 1 && count[e] < 2) continue;
      const v =
        mode === 0
          ? weight[e] / count[e]
          : mode === 1
            ? weight[e] / (count[e] - 1)
            : weight[e] / (count[e] + 1);
      if (pick < 0 || (mode === 0 ? v > pickKey : v < pickKey)) {
        pick = e;
        pickKey = v;
      }
    }
    if (pick < 0) break;
    mark[pick] = stamp;
    key[pick] = pickKey;
    out[m++] = pick;
  }
  return m;
}

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

import { estimateSorted, reorder, sortByReplicaLoad } from "./estimate.js";
import { CountsWorkspace } from "./workspace.js";

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

import { waterFillCounts } from "../blocks/replication.js";
import type { Placement } from "../model/placement.js";
import { RELAXED, STRICT } from "./options.js";
import {
  applyRecount,
  applySwap,
  type MigrationWorkspace,
  restorable,
  touchRecount,
} from "./state.js";

// Repair: replica counts moved to their goal, then a steepest descent on the load above the
// target, always from the hottest GPU.

// Replica counts move to the fresh plan's only where the short expert's replicas carry more than
// the spare one's would by this fraction of the mean GPU load: near-ties are not worth a
// transfer. Relative to the GPU, not to the replica: with two slots per GPU a replica is most
// of its GPU's load, and a margin of 5% of the replica (the old rule) left GPUs 5% hotter.
const COUNT_MARGIN = 0.014;

// Weights of a move by its change in slots differing from the previous placement (-2..2): moves
// that restore previous slots are nearly free, a swap costs two slots.
const COST_DIVISOR = [0.125, 0.25, 0.5, 1, 2];

const above = (x: number, target: number) => (x > target ? x - target : 0);

/**
 * Repairs the state loaded in `ws` towards `target` with at most `budget` changed slots: a
 * steepest descent on the total load above the target per changed slot, always from the
 * hottest GPU `h`, over three moves: swap a replica on `h` with a lighter one elsewhere; add a
 * replica of an expert on `h` in place of a spare replica elsewhere; give a spare replica on `h`
 * to another expert. A move must lighten `h` and leave every GPU below `h`'s old load, creates
 * no second replica of an expert on a GPU, and keeps the locality mode; with `ws.goalActive`,
 * replica counts only move toward `ws.goal`. Stops when `h` is at or below the target, cannot
 * improve, or the budget is spent.
 */
export function repair(ws: MigrationWorkspace, target: number, budget: number): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S, gpusPerNode } = t;
  const { slotsPerNode: Sn } = t;
  const { weight: w, count: cnt, phy, prev, gpuLoad, gpuHas, goal } = ws;
  const { home, homeCount, head, next, gainAdd, removeLoss, slotLoss, slotLoad } = ws;
  const lightestSlot = ws.gpuLightest;
  const edited = ws.gpuEdited;
  const mode = ws.mode;
  let recounts = true;
  if (ws.goalActive) {
    let short = 0;
    let spare = 0;
    for (let e = 0; e < E; e++) {
      if (cnt[e] < goal[e]) short++;
      else if (cnt[e] > goal[e]) spare++;
    }
    recounts = short > 0 && spare > 0;
  }
  const maxIterations = 4 * P;
  // gainAdd, removeLoss and slotLoss of an expert are recomputed only after a move changed the
  // load of a GPU holding it, or its count.
  const stale = ws.expertStale;
  stale.fill(1);
  for (let p = 0; p < P; p++) slotLoad[p] = w[phy[p]] / cnt[phy[p]];
  for (let g = 0; g < G; g++) refreshGpu(ws, g);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let h = 0;
    for (let g = 1; g < G; g++) if (gpuLoad[g] > gpuLoad[h]) h = g;
    const Lh = gpuLoad[h];
    if (Lh <= target) return;
    const eps = Lh * 1e-9;
    const budgetLeft = budget - ws.changed;
    const hNode = Math.floor(h / gpusPerNode);
    const scopeStart = mode === STRICT ? hNode * gpusPerNode : 0;
    const scopeEnd = mode === STRICT ? scopeStart + gpusPerNode : G;
    let bestScore = 0;
    let bestPeak = Number.POSITIVE_INFINITY;
    let bestKind = 0; // 0 none, 1 swap of slots (a, b), 2 slot a gets expert b
    let bestA = -1;
    let bestB = -1;
    const hBase = h * S;
    const exH = Lh - target;

    // Swaps: a replica on h trades places with a lighter replica on a GPU of h's scope. Replica
    // loads, each GPU's lightest and whether it has a changed slot are kept up to date by the
    // moves (refreshSlots), not recomputed per move; a replica whose expert h holds is skipped
    // below, so the lightest over all of g's replicas is a bound that holds for any h.
    for (let ja = 0; ja < S; ja++) {
      const a = hBase + ja;
      const x = phy[a];
      const rx = w[x] / cnt[x];
      // Relaxed mode: x may leave h's node unless it is x's last replica on its home node.
      const xMayLeave = mode !== RELAXED || home[x] !== hNode || homeCount[x] > 1;
      // Swapping an unchanged slot a costs it (+1), a changed one may restore it (-1).
      const aCost = x !== prev[a] ? -1 : 1;
      for (let g = scopeStart; g < scopeEnd; g++) {
        if (g === h) continue;
        const Lg = gpuLoad[g];
        // Load moved onto a GPU above the target costs as much excess as it removes from h.
        // No replica of g lighter than x's by more than eps: no swap with g.
        const most = rx - lightestSlot[g];
        if (Lg >= target || most <= eps || gpuHas[g * E + x] > 0) continue;
        // A swap with g gains at most h's excess, g's room below the target and the largest
        // load it can move, at the cheapest cost g's slots allow (eps covers the rounding); its
        // peak is at least h less that load, and half the two loads. A pair that cannot beat
        // or tie the best is skipped.
        const bound =
          (Math.min(exH, target - Lg, most) + eps) / COST_DIVISOR[aCost + (edited[g] ? 1 : 3)];
        if (bound < bestScore) continue;
        if (bound <= bestScore && Math.max(Lh - most, (Lh + Lg) / 2 - eps) >= bestPeak) continue;
        const gNode = Math.floor(g / gpusPerNode);
        const crossing = mode === RELAXED && gNode !== hNode;
        if (crossing && !xMayLeave) continue;
        for (let jb = 0; jb < S; jb++) {
          const b = g * S + jb;
          const d = rx - slotLoad[b];
          if (d <= eps) continue;
          const y = phy[b];
          if (gpuHas[h * E + y] > 0) continue;
          if (crossing && home[y] === gNode && homeCount[y] <= 1) continue;
          const ng = Lg + d;
          if (ng >= Lh - eps) continue;
          const cost =
            (y !== prev[a] ? 1 : 0) +
            (x !== prev[b] ? 1 : 0) -
            (x !== prev[a] ? 1 : 0) -
            (y !== prev[b] ? 1 : 0);
          if (cost > budgetLeft) continue;
          const nh = Lh - d;
          const gain = exH - above(nh, target) - above(ng, target);
          if (gain <= eps) continue;
          const score = gain / COST_DIVISOR[cost + 2];
          const peak = Math.max(nh, ng);
          if (score > bestScore || (score === bestScore && peak < bestPeak)) {
            bestScore = score;
            bestPeak = peak;
            bestKind = 1;
            bestA = a;
            bestB = b;
          }
        }
      }
    }

    // With counts held at their goal, recounts only go from a surplus to a short expert.
    if (recounts) {
      // Recounts: slot b's expert x (a spare replica) becomes y. Either y is on h (h's share of y
      // shrinks) or b is on h (h drops x's replica). gainAdd and removeLoss bound a candidate's
      // gain from above, so most are dismissed without a full evaluation.
      for (let y = 0; y < E; y++) {
        // Unchanged since the last iteration: same loads on its GPUs, same count and slots.
        if (!stale[y]) continue;
        stale[y] = 0;
        const cy = cnt[y];
        const dy = w[y] / (cy + 1) - w[y] / cy;
        let gy = 0;
        for (let s = head[y]; s >= 0; s = next[s]) {
          const L = gpuLoad[Math.floor(s / S)];
          if (L > target) gy += L - target - above(L + dy, target);
        }
        gainAdd[y] = gy;
        if (cy < 2) continue;
        const dx = w[y] / (cy - 1) - w[y] / cy;
        let loss = 0;
        for (let s = head[y]; s >= 0; s = next[s]) {
          const L = gpuLoad[Math.floor(s / S)];
          const term = above(L + dx, target) - above(L, target);
          slotLoss[s] = term;
          loss += term;
        }
        removeLoss[y] = loss;
      }
      // No donor GPU can lose more excess than the hottest GPU but h (which holds y) has.
      let exSecond = 0;
      for (let g = 0; g < G; g++) {
        if (g !== h && gpuLoad[g] - target > exSecond) exSecond = gpuLoad[g] - target;
      }
      for (let ja = 0; ja < S; ja++) {
        const a = hBase + ja;
        const y = phy[a];
        if (w[y] <= 0) continue;
        const ry1 = w[y] / (cnt[y] + 1);
        const gy = gainAdd[y];
        // A move giving y a slot it held before costs -1; otherwise at least 1.
        const bestDivisor = restorable(ws, y) ? COST_DIVISOR[1] : COST_DIVISOR[3];
        if ((gy + exSecond) / bestDivisor < bestScore) continue;
        const from = mode === STRICT ? home[y] * Sn : 0;
        const to = mode === STRICT ? from + Sn : P;
        if (ws.goalActive && cnt[y] >= goal[y]) continue;
        for (let b = from; b < to; b++) {
          const x = phy[b];
          if (x === y || cnt[x] < 2) continue;
          if (ws.goalActive && cnt[x] <= goal[x]) continue;
          const gb = Math.floor(b / S);
          if (gpuHas[gb * E + y] > 0) continue;
          if (
            mode === RELAXED &&
            home[x] * Sn <= b &&
            b < (home[x] + 1) * Sn &&
            homeCount[x] <= 1
          ) {
            continue;
          }
          const Lb = gpuLoad[gb];
          const nb = Lb + ry1 - w[x] / cnt[x];
          if (nb >= Lh - eps) continue;
          const cost = (y !== prev[b] ? 1 : 0) - (x !== prev[b] ? 1 : 0);
          if (cost > budgetLeft) continue;
          const divisor = COST_DIVISOR[cost + 2];
          const bound = gy + above(Lb, target) - above(nb, target) - (removeLoss[x] - slotLoss[b]);
          if (bound <= eps || bound / divisor < bestScore) continue;
          const gain = evaluateRecount(ws, b, x, y, h, Lh, target, eps);
          if (gain <= eps) continue;
          const score = gain / divisor;
          const peak = ws.evalPeak;
          if (score > bestScore || (score === bestScore && peak < bestPeak)) {
            bestScore = score;
            bestPeak = peak;
            bestKind = 2;
            bestA = b;
            bestB = y;
          }
        }
      }
      for (let ja = 0; ja < S; ja++) {
        const a = hBase + ja;
        const x = phy[a];
        if (cnt[x] < 2) continue;
        if (ws.goalActive && cnt[x] <= goal[x]) continue;
        if (mode === RELAXED && home[x] === hNode && homeCount[x] <= 1) continue;
        const rx = w[x] / cnt[x];
        for (let y = 0; y < E; y++) {
          if (y === x || gpuHas[h * E + y] > 0) continue;
          if (ws.goalActive && cnt[y] >= goal[y]) continue;
          if (mode === STRICT && home[y] !== hNode) continue;
          // h must get lighter: its new replica must carry less than the one it drops.
          const nh = Lh - rx + w[y] / (cnt[y] + 1);
          if (nh >= Lh - eps) continue;
          const cost = (y !== prev[a] ? 1 : 0) - (x !== prev[a] ? 1 : 0);
          if (cost > budgetLeft) continue;
          const divisor = COST_DIVISOR[cost + 2];
          const bound = gainAdd[y] + exH - above(nh, target) - (removeLoss[x] - slotLoss[a]);
          if (bound <= eps || bound / divisor < bestScore) continue;
          const gain = evaluateRecount(ws, a, x, y, h, Lh, target, eps);
          if (gain <= eps) continue;
          const score = gain / divisor;
          const peak = ws.evalPeak;
          if (score > bestScore || (score === bestScore && peak < bestPeak)) {
            bestScore = score;
            bestPeak = peak;
            bestKind = 2;
            bestA = a;
            bestB = y;
          }
        }
      }
    }
    if (bestKind === 0) return;
    if (bestKind === 1) {
      applySwap(ws, bestA, bestB);
      markStale(ws, Math.floor(bestA / S));
      markStale(ws, Math.floor(bestB / S));
      slotLoad[bestA] = w[phy[bestA]] / cnt[phy[bestA]];
      slotLoad[bestB] = w[phy[bestB]] / cnt[phy[bestB]];
      refreshGpu(ws, Math.floor(bestA / S));
      refreshGpu(ws, Math.floor(bestB / S));
    } else {
      const x = phy[bestA];
      stale[x] = 1;
      applyRecount(ws, bestA, bestB);
      // The replicas of both experts changed load, on the GPUs holding either.
      for (let p = head[x]; p >= 0; p = next[p]) slotLoad[p] = w[x] / cnt[x];
      for (let p = head[bestB]; p >= 0; p = next[p]) slotLoad[p] = w[bestB] / cnt[bestB];
      for (let i = 0; i < ws.touchedCount; i++) {
        markStale(ws, ws.touched[i]);
        refreshGpu(ws, ws.touched[i]);
      }
    }
  }
}

/** {@link repair}: GPU `g`'s lightest replica load and whether a slot of it changed. */
function refreshGpu(ws: MigrationWorkspace, g: number): void {
  const S = ws.topology.slotsPerGpu;
  const { phy, prev, slotLoad } = ws;
  let lightest = Number.POSITIVE_INFINITY;
  let changedHere = 0;
  for (let s = g * S; s < (g + 1) * S; s++) {
    if (slotLoad[s] < lightest) lightest = slotLoad[s];
    if (phy[s] !== prev[s]) changedHere = 1;
  }
  ws.gpuLightest[g] = lightest;
  ws.gpuEdited[g] = changedHere;
}

/** Marks the experts on GPU `g` for {@link repair} to recompute their bounds. */
function markStale(ws: MigrationWorkspace, g: number): void {
  const S = ws.topology.slotsPerGpu;
  for (let s = g * S; s < (g + 1) * S; s++) ws.expertStale[ws.phy[s]] = 1;
}

/**
 * The replica counts the loaded state moves to: in strict hierarchical layers, water-filling
 * within each node over its groups' experts (so counts fit the node's slots whatever groups it
 * holds); otherwise the fresh plan's counts, or without one water-filling over the layer.
 * Writes `ws.goal`.
 */
export function goalCounts(ws: MigrationWorkspace, fresh: Placement | null, layer: number): void {
  const t = ws.topology;
  const { numExperts: E, numNodes: N, slotsPerNode: Sn } = t;
  const { goal, home, weight, goalWeight, goalCount, goalExperts } = ws;
  if (ws.mode !== STRICT) {
    if (fresh !== null) goal.set(fresh.logcnt.subarray(layer * E, (layer + 1) * E));
    else waterFillCounts(weight, E, t.numReplicas, goal, ws.replication);
    return;
  }
  for (let node = 0; node < N; node++) {
    let k = 0;
    for (let e = 0; e < E; e++) {
      if (home[e] !== node) continue;
      goalExperts[k] = e;
      goalWeight[k] = weight[e];
      k++;
    }
    if (k === 0) continue;
    waterFillCounts(goalWeight, k, Sn, goalCount, ws.replication);
    for (let i = 0; i < k; i++) goal[goalExperts[i]] = goalCount[i];
  }
}

/**
 * Moves replica counts toward `ws.goal`: while some expert `y` has fewer replicas than its goal,
 * the one whose replicas carry most gets a slot of a spare replica (its expert `x` above its
 * goal), where the largest resulting GPU load is lowest. Each move changes one slot. A pair is
 * skipped when `y`'s replicas carry at most {@link COUNT_MARGIN} of the mean GPU load more than
 * `x`'s would with one fewer: near-ties of the counts are not worth a transfer. Stops at `limit`
 * changed slots.
 */
export function alignCounts(ws: MigrationWorkspace, limit: number): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, slotsPerGpu: S, slotsPerNode: Sn } = t;
  const { weight: w, count: cnt, phy, gpuHas, home, homeCount, gpuLoad, delta, touched } = ws;
  const { goal } = ws;
  const skip = ws.rankCount;
  skip.fill(0);
  const mode = ws.mode;
  for (let iteration = 0; iteration < P; iteration++) {
    if (ws.changed >= limit) return;
    let y = -1;
    for (let e = 0; e < E; e++) {
      if (skip[e] || cnt[e] >= goal[e]) continue;
      if (y < 0 || w[e] / cnt[e] > w[y] / cnt[y]) y = e;
    }
    if (y < 0) return;
    const from = mode === STRICT ? home[y] * Sn : 0;
    const to = mode === STRICT ? from + Sn : P;
    const ry = w[y] / cnt[y];
    const margin = COUNT_MARGIN * ws.meanLoad;
    let best = -1;
    let bestPeak = Number.POSITIVE_INFINITY;
    for (let b = from; b < to; b++) {
      const x = phy[b];
      if (x === y || cnt[x] <= goal[x] || cnt[x] < 2) continue;
      if (ry - w[x] / (cnt[x] - 1) <= margin) continue;
      if (gpuHas[Math.floor(b / S) * E + y] > 0) continue;
      if (mode === RELAXED && home[x] * Sn <= b && b < (home[x] + 1) * Sn && homeCount[x] <= 1) {
        continue;
      }
      touchRecount(ws, b, x, y);
      let peak = 0;
      for (let i = 0; i < ws.touchedCount; i++) {
        const g = touched[i];
        if (gpuLoad[g] + delta[g] > peak) peak = gpuLoad[g] + delta[g];
      }
      if (peak < bestPeak) {
        bestPeak = peak;
        best = b;
      }
    }
    if (best < 0) skip[y] = 1;
    else applyRecount(ws, best, y);
  }
}

/**
 * Gain (reduction of the total load above `target`) of turning slot `b` from expert
 * `x` into expert `y`, or 0 when the move is not allowed: it must lighten the hottest GPU `h`
 * and leave every GPU below `Lh`. Sets `ws.evalPeak` to the largest new load of a touched GPU.
 */
function evaluateRecount(
  ws: MigrationWorkspace,
  b: number,
  x: number,
  y: number,
  h: number,
  Lh: number,
  target: number,
  eps: number,
): number {
  const { gpuLoad, delta, touched } = ws;
  touchRecount(ws, b, x, y);
  if (ws.mark[h] !== ws.stamp || delta[h] >= -eps) return 0;
  let gain = 0;
  let peak = 0;
  for (let i = 0; i < ws.touchedCount; i++) {
    const g = touched[i];
    const L = gpuLoad[g];
    const nL = L + delta[g];
    if (nL >= Lh - eps) return 0;
    if (nL > peak) peak = nL;
    gain += above(L, target) - above(nL, target);
  }
  ws.evalPeak = peak;
  return gain;
}

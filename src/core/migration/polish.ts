import { RELAXED, STRICT } from "./options.js";
import { applySwap, type MigrationWorkspace } from "./state.js";

// Polish: a steepest descent on the smooth maximum GPU load by swaps between a hotter and a cooler
// GPU, with the best swap of every GPU pair cached.

// Pair visits of one polish, per slot of the layer: bounds the work on large flat scopes.
const POLISH_VISITS = 512;

/**
 * Polishes the state loaded in `ws`: a steepest descent on the smooth maximum
 * `tau * log(sum_g exp(L_g / tau))` of the GPU loads by swaps of two replicas between a hotter
 * and a cooler GPU of one scope. Unlike the largest load, the smooth maximum also counts the
 * GPUs just below the largest, which per-step noise and drift turn into the largest on future
 * traffic. A swap is worth its gain minus `perSlot` per slot it changes (one restoring previous
 * slots earns that much); the best positive one is applied until none is left, the budget is
 * spent, the smooth maximum is down to `stopAt`, or {@link POLISH_VISITS} pair visits per slot
 * are used up.
 *
 * The best swap of a GPU pair, per change in slots, only depends on the two GPUs, so it is cached
 * and recomputed only when one of them changed; pairs whose bound cannot beat the best swap
 * found are not computed at all.
 */
export function polish(
  ws: MigrationWorkspace,
  budget: number,
  perSlot: number,
  stopAt: number,
): void {
  const t = ws.topology;
  const { numGpus: G, slotsPerGpu: S, gpusPerNode, numReplicas: P } = t;
  const { count: cnt, phy, gpuLoad, slotLoad, weight, gpuOrder: order } = ws;
  const { gpuExp: ex, gpuRoot: root, gpuMaxReplica: maxR, gpuMinReplica: minR } = ws;
  const { gain, slotA, slotB, pairStamp, gpuStamp, least, bound, boundStamp } = ws.pairs;
  const { cheapest } = ws.pairs;
  const limit = ws.limits;
  const tau = ws.tau;
  if (!(tau > 0)) return;
  const strict = ws.mode === STRICT;
  const relaxed = ws.mode === RELAXED;
  // Cache entries of earlier layers or calls are stale: every GPU gets a new stamp.
  for (let g = 0; g < G; g++) gpuStamp[g] = ++ws.pairs.clock;
  for (let s = 0; s < P; s++) slotLoad[s] = weight[phy[s]] / cnt[phy[s]];
  for (let g = 0; g < G; g++) replicaRange(ws, g);
  // The most a swap can earn beyond its gain: restoring two previous slots.
  const bonus = 2 * perSlot;
  let visits = POLISH_VISITS * P;
  for (let iteration = 0; iteration < 4 * P && visits > 0; iteration++) {
    let top = 0;
    for (let g = 0; g < G; g++) if (gpuLoad[g] > top) top = gpuLoad[g];
    let phi = 0;
    let minAll = Number.POSITIVE_INFINITY;
    for (let g = 0; g < G; g++) {
      root[g] = Math.exp((gpuLoad[g] - top) / (2 * tau));
      ex[g] = root[g] * root[g];
      phi += ex[g];
      order[g] = g;
      if (minR[g] < minAll) minAll = minR[g];
    }
    if (top + tau * Math.log(phi) <= stopAt) return;
    sortByLoad(order, G, gpuLoad);
    let maxDrop = 0;
    for (let g = 0; g < G; g++) if (maxR[g] - minAll > maxDrop) maxDrop = maxR[g] - minAll;
    const budgetLeft = budget - ws.changed;
    let best = 0;
    let bestA = -1;
    let bestB = -1;
    // A change `x` of the sum of exponentials (scaled by exp(-top / tau)) can only beat `best`
    // when x < floor: the net gain -tau * log1p(x / phi) - cost * perSlot is at most that + bonus.
    let floor = phi * Math.expm1(-(best - bonus) / tau);
    netLimits(limit, best, perSlot, tau, phi);
    // g1 loses at most its largest replica less the smallest anywhere; cooler GPUs gain less.
    const dropFactor = Math.exp(-maxDrop / tau) - 1;
    for (let oi = 0; oi < G; oi++) {
      const g1 = order[oi];
      const e1 = ex[g1];
      if (e1 * dropFactor >= floor) break;
      const n1 = Math.floor(g1 / gpusPerNode);
      const L1 = gpuLoad[g1];
      const reach = maxR[g1] - minAll;
      let down = 0;
      let up = -1;
      for (let oj = G - 1; oj > oi; oj--) {
        const g2 = order[oj];
        const gap = L1 - gpuLoad[g2];
        if (gap <= 0) break;
        // At best a swap moves min(gap / 2, reach): the pair's loads meet, or g1 gives its
        // largest replica for the smallest anywhere. Partners come coldest first and this bound
        // only shrinks with the gap.
        let most: number;
        if (gap <= 2 * reach) {
          const r = root[g1] - root[g2];
          most = -r * r;
        } else {
          if (up < 0) {
            const f = Math.exp(reach / tau);
            down = e1 * (1 / f - 1);
            up = f - 1;
          }
          most = down + ex[g2] * up;
        }
        if (most >= floor) break;
        if (strict && Math.floor(g2 / gpusPerNode) !== n1) continue;
        visits--;
        const pair = g1 * G + g2;
        if (pairStamp[2 * pair] !== gpuStamp[g1] || pairStamp[2 * pair + 1] !== gpuStamp[g2]) {
          // The pair's bound depends on the two GPUs only: kept while both keep their stamps
          // (so it is valid too wherever the pair's swaps are, which are computed after it).
          if (boundStamp[2 * pair] !== gpuStamp[g1] || boundStamp[2 * pair + 1] !== gpuStamp[g2]) {
            pairBound(ws, g1, g2, gap);
          }
          const f = bound[pair];
          if (f === 0) continue;
          const most = e1 * (1 / f - 1) + ex[g2] * (f - 1);
          const pairFloor = Math.min(limit[cheapest[pair]], floor);
          // Relaxed mode computes every pair it may use when first seen: which swaps keep the
          // home nodes changes with later swaps, and the cached pair is what was seen then.
          if (most >= floor || (!relaxed && most >= pairFloor)) continue;
          bestSwaps(ws, g1, g2, gap);
          pairStamp[2 * pair] = gpuStamp[g1];
          pairStamp[2 * pair + 1] = gpuStamp[g2];
        }
        if (e1 * least[pair] >= Math.min(limit[cheapest[pair]], floor)) continue;
        for (let c = 0; c < 5; c++) {
          const h = gain[5 * pair + c];
          const x = e1 * h;
          if (h >= 0 || x >= floor || c - 2 > budgetLeft) continue;
          // Most candidates cannot beat the best: dismissed without a logarithm.
          if (x >= limit[c]) continue;
          const net = -tau * Math.log1p(x / phi) - perSlot * (c - 2);
          if (net <= best) continue;
          // Relaxed mode: later swaps may have left a cached swap's expert with its last
          // replica on its home node; the pair waits until it is recomputed.
          if (relaxed && !keepsHome(ws, slotA[5 * pair + c], slotB[5 * pair + c])) {
            pairStamp[2 * pair] = -1;
            continue;
          }
          best = net;
          bestA = slotA[5 * pair + c];
          bestB = slotB[5 * pair + c];
          floor = phi * Math.expm1(-(best - bonus) / tau);
          netLimits(limit, best, perSlot, tau, phi);
        }
      }
    }
    if (bestA < 0) return;
    applySwap(ws, bestA, bestB);
    const ga = Math.floor(bestA / S);
    const gb = Math.floor(bestB / S);
    slotLoad[bestA] = weight[phy[bestA]] / cnt[phy[bestA]];
    slotLoad[bestB] = weight[phy[bestB]] / cnt[phy[bestB]];
    replicaRange(ws, ga);
    replicaRange(ws, gb);
    gpuStamp[ga] = ++ws.pairs.clock;
    gpuStamp[gb] = ++ws.pairs.clock;
  }
}

/**
 * Relaxed mode: whether swapping slots `a` and `b` keeps a replica of each of the two experts on
 * its home node.
 */
function keepsHome(ws: MigrationWorkspace, a: number, b: number): boolean {
  const Sn = ws.topology.slotsPerNode;
  const na = Math.floor(a / Sn);
  const nb = Math.floor(b / Sn);
  if (na === nb) return true;
  const { phy, home, homeCount } = ws;
  const x = phy[a];
  const y = phy[b];
  return !(home[x] === na && homeCount[x] <= 1) && !(home[y] === nb && homeCount[y] <= 1);
}

/** Largest and smallest replica load on GPU `g` (from `ws.slotLoad`). */
function replicaRange(ws: MigrationWorkspace, g: number): void {
  const S = ws.topology.slotsPerGpu;
  let hi = 0;
  let lo = Number.POSITIVE_INFINITY;
  for (let s = g * S; s < (g + 1) * S; s++) {
    const r = ws.slotLoad[s];
    if (r > hi) hi = r;
    if (r < lo) lo = r;
  }
  ws.gpuMaxReplica[g] = hi;
  ws.gpuMinReplica[g] = lo;
}

/**
 * For GPUs `g1` (hotter by `gap`) and `g2`: per change in slots (-2..2), the swap of a replica
 * on `g1` with a lighter one on `g2` that most lowers `exp(L1 / tau) + exp(L2 / tau)`, as that
 * change over `exp(L1 / tau)` (0 when there is none), with its slots.
 */
function bestSwaps(ws: MigrationWorkspace, g1: number, g2: number, gap: number): void {
  const t = ws.topology;
  const { numExperts: E, numGpus: G, slotsPerGpu: S, gpusPerNode } = t;
  const { phy, prev, gpuHas, home, homeCount, slotLoad } = ws;
  const { gain, slotA, slotB } = ws.pairs;
  const tau = ws.tau;
  const base = 5 * (g1 * G + g2);
  // exp(-d / tau) + exp((d - gap) / tau) is convex and symmetric about d = gap / 2: per change
  // in slots, the best swap moves the load closest to half the gap.
  const half = gap / 2;
  for (let c = 0; c < 5; c++) {
    gain[base + c] = Number.POSITIVE_INFINITY;
    slotA[base + c] = -1;
  }
  const n1 = Math.floor(g1 / gpusPerNode);
  const n2 = Math.floor(g2 / gpusPerNode);
  const crossing = ws.mode === RELAXED && n2 !== n1;
  // What the inner loop needs of g2's slots, read once per pair rather than once per slot of g1.
  const { loadB, expertB, prevB, movableB, changedB } = ws.pairs;
  let lightest = Number.POSITIVE_INFINITY;
  for (let jb = 0; jb < S; jb++) {
    const b = g2 * S + jb;
    const y = phy[b];
    loadB[jb] = slotLoad[b];
    expertB[jb] = y;
    prevB[jb] = prev[b];
    changedB[jb] = y !== prev[b] ? 1 : 0;
    const movable = gpuHas[g1 * E + y] === 0 && !(crossing && home[y] === n2 && homeCount[y] <= 1);
    movableB[jb] = movable ? 1 : 0;
    if (movable && slotLoad[b] < lightest) lightest = slotLoad[b];
  }
  for (let ja = 0; ja < S; ja++) {
    const a = g1 * S + ja;
    const x = phy[a];
    const rx = slotLoad[a];
    // No movable replica of g2 is lighter: no swap from this slot.
    if (!(rx > lightest)) continue;
    if (gpuHas[g2 * E + x] > 0) continue;
    if (crossing && home[x] === n1 && homeCount[x] <= 1) continue;
    const pa = prev[a];
    const xChanged = x !== pa ? 1 : 0;
    for (let jb = 0; jb < S; jb++) {
      const d = rx - loadB[jb];
      if (d <= 0 || d >= gap || movableB[jb] === 0) continue;
      const cost =
        (expertB[jb] !== pa ? 1 : 0) + (x !== prevB[jb] ? 1 : 0) - xChanged - changedB[jb];
      const off = d > half ? d - half : half - d;
      const k = base + cost + 2;
      if (off < gain[k]) {
        gain[k] = off;
        slotA[k] = a;
        slotB[k] = g2 * S + jb;
      }
    }
  }
  const tail = Math.exp(-gap / tau);
  let least = 0;
  for (let k = base; k < base + 5; k++) {
    if (slotA[k] < 0) {
      gain[k] = 0;
      continue;
    }
    const d = half + gain[k];
    gain[k] = Math.expm1(-d / tau) + Math.exp((d - gap) / tau) - tail;
    if (gain[k] < least) least = gain[k];
  }
  ws.pairs.least[g1 * G + g2] = least;
}

/**
 * The bound on the best swap of GPUs `g1` (hotter by `gap`) and `g2`, computed once per stamps
 * of the two: `exp(room / tau)` of the most load a swap can move toward their meeting point (0
 * when none), and the cheapest change in slots (index -2..2 + 2) a swap can make. A slot that
 * holds its previous expert costs one more when swapped; a changed one restores its previous
 * expert, one less, only when that expert is on the other GPU.
 */
function pairBound(ws: MigrationWorkspace, g1: number, g2: number, gap: number): void {
  const { numExperts: E, numGpus: G, slotsPerGpu: S } = ws.topology;
  const { phy, prev, gpuHas, gpuMaxReplica: maxR, gpuMinReplica: minR } = ws;
  const { bound, boundStamp, cheapest, gpuStamp } = ws.pairs;
  const pair = g1 * G + g2;
  const room = Math.min(gap / 2, maxR[g1] - minR[g2]);
  bound[pair] = room <= 0 ? 0 : Math.exp(room / ws.tau);
  boundStamp[2 * pair] = gpuStamp[g1];
  boundStamp[2 * pair + 1] = gpuStamp[g2];
  let termA = 1;
  for (let a = g1 * S; a < (g1 + 1) * S && termA > -1; a++) {
    if (phy[a] === prev[a]) continue;
    const term = prev[a] >= 0 && gpuHas[g2 * E + prev[a]] > 0 ? -1 : 0;
    if (term < termA) termA = term;
  }
  let termB = 1;
  for (let b = g2 * S; b < (g2 + 1) * S && termB > -1; b++) {
    if (phy[b] === prev[b]) continue;
    const term = prev[b] >= 0 && gpuHas[g1 * E + prev[b]] > 0 ? -1 : 0;
    if (term < termB) termB = term;
  }
  cheapest[pair] = termA + termB + 2;
}

/**
 * Per change in slots `c - 2`: a change `x` of the sum of exponentials at or above `limit[c]`
 * cannot make a swap's net gain `-tau * log1p(x / phi) - perSlot * (c - 2)` exceed `best`. The
 * limits are loosened by far more than the rounding of either side, so a swap they dismiss is
 * one the exact comparison would dismiss too.
 */
function netLimits(limit: Float64Array, best: number, perSlot: number, tau: number, phi: number) {
  for (let c = 0; c < 5; c++) {
    const x = phi * Math.expm1(-(best + perSlot * (c - 2)) / tau);
    limit[c] = x + 1e-9 * Math.abs(x) + 1e-12 * phi;
  }
}

/** Sorts `order[0..n)` by `load` descending (ties: lower index first); n is small. */
function sortByLoad(order: Int32Array, n: number, load: Float64Array): void {
  for (let i = 1; i < n; i++) {
    const g = order[i];
    const L = load[g];
    let j = i - 1;
    while (j >= 0 && (load[order[j]] < L || (load[order[j]] === L && order[j] > g))) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = g;
  }
}

import { replicaCap, type ScopeWorkspace } from "./scope.js";

/** Copies of expert `e` on GPU `g`, not counting slot `skip` (pass -1 to count all). */
function copiesOn(ws: ScopeWorkspace, g: number, e: number, skip: number): number {
  const S = ws.slotsPerGpu;
  let m = 0;
  for (let s = g * S; s < g * S + S; s++) if (s !== skip && ws.slotExpert[s] === e) m++;
  return m;
}

/**
 * Whether exchanging slots `a` (on GPU `ga`) and `b` (on GPU `gb`) keeps every cap and home node
 * rule: neither expert may exceed its per-GPU cap on its new GPU, and an expert leaving its home
 * node must keep another replica there.
 */
function swapAllowed(ws: ScopeWorkspace, a: number, ga: number, b: number, gb: number): boolean {
  const ea = ws.slotExpert[a];
  const eb = ws.slotExpert[b];
  const G = ws.numGpus;
  if (copiesOn(ws, gb, ea, b) >= replicaCap(ws.count[ea], G)) return false;
  if (copiesOn(ws, ga, eb, a) >= replicaCap(ws.count[eb], G)) return false;
  const gpn = ws.gpusPerNode;
  if (gpn > 0) {
    const na = (ga / gpn) | 0;
    const nb = (gb / gpn) | 0;
    if (na !== nb) {
      if (na === ws.home[ea] && ws.homeCount[ea] < 2) return false;
      if (nb === ws.home[eb] && ws.homeCount[eb] < 2) return false;
    }
  }
  return true;
}

/** Exchanges slots `a` (GPU `ga`) and `b` (GPU `gb`), updating loads and home counts. */
function applySwap(ws: ScopeWorkspace, a: number, ga: number, b: number, gb: number): void {
  const ea = ws.slotExpert[a];
  const eb = ws.slotExpert[b];
  const d = ws.replicaLoad[ea] - ws.replicaLoad[eb];
  ws.slotExpert[a] = eb;
  ws.slotExpert[b] = ea;
  ws.gpuLoad[ga] -= d;
  ws.gpuLoad[gb] += d;
  const gpn = ws.gpusPerNode;
  if (gpn > 0) {
    const na = (ga / gpn) | 0;
    const nb = (gb / gpn) | 0;
    if (na !== nb) {
      if (na === ws.home[ea]) ws.homeCount[ea]--;
      if (nb === ws.home[ea]) ws.homeCount[ea]++;
      if (nb === ws.home[eb]) ws.homeCount[eb]--;
      if (na === ws.home[eb]) ws.homeCount[eb]++;
    }
  }
}

/** Sorts `gpuOrder` by ascending load (ties: lower index first) and fills `gpuPos`. */
function sortGpus(ws: ScopeWorkspace): void {
  const { numGpus: G, gpuOrder: order, gpuPos: pos, gpuLoad: load } = ws;
  for (let g = 0; g < G; g++) {
    let i = g;
    while (i > 0 && gpuAfter(order[i - 1], g, load)) {
      order[i] = order[i - 1];
      i--;
    }
    order[i] = g;
  }
  for (let i = 0; i < G; i++) pos[order[i]] = i;
}

/** Whether GPU `a` sorts after GPU `b` (heavier, or equal and higher index). */
function gpuAfter(a: number, b: number, load: Float64Array): boolean {
  return load[a] > load[b] || (load[a] === load[b] && a > b);
}

/** Moves GPU `g` to its place in `gpuOrder` after its load changed. */
function resortGpu(ws: ScopeWorkspace, g: number): void {
  const { numGpus: G, gpuOrder: order, gpuPos: pos, gpuLoad: load } = ws;
  let i = pos[g];
  while (i > 0 && gpuAfter(order[i - 1], g, load)) {
    order[i] = order[i - 1];
    pos[order[i]] = i;
    i--;
  }
  while (i < G - 1 && gpuAfter(g, order[i + 1], load)) {
    order[i] = order[i + 1];
    pos[order[i]] = i;
    i++;
  }
  order[i] = g;
  pos[g] = i;
}

/**
 * Sorts the slots of every GPU by descending replica load (insertion sort: packing already fills
 * GPUs largest first, so this is linear there). Refinement keeps this order.
 */
function sortSlots(ws: ScopeWorkspace): void {
  const { numGpus: G, slotsPerGpu: S, slotExpert, replicaLoad } = ws;
  for (let g = 0; g < G; g++) {
    const base = g * S;
    for (let k = 1; k < S; k++) {
      const e = slotExpert[base + k];
      const v = replicaLoad[e];
      let i = k;
      while (i > 0 && replicaLoad[slotExpert[base + i - 1]] < v) {
        slotExpert[base + i] = slotExpert[base + i - 1];
        i--;
      }
      slotExpert[base + i] = e;
    }
  }
}

/** Restores the descending order of GPU `g`'s slots after slot `s` changed. */
function resortSlot(ws: ScopeWorkspace, g: number, s: number): void {
  const { slotsPerGpu: S, slotExpert, replicaLoad } = ws;
  const base = g * S;
  const e = slotExpert[s];
  const v = replicaLoad[e];
  let i = s;
  while (i > base && replicaLoad[slotExpert[i - 1]] < v) {
    slotExpert[i] = slotExpert[i - 1];
    i--;
  }
  while (i < base + S - 1 && replicaLoad[slotExpert[i + 1]] > v) {
    slotExpert[i] = slotExpert[i + 1];
    i++;
  }
  slotExpert[i] = e;
}

/**
 * Pairwise-swap local search on the hottest GPU: repeatedly exchanges one replica of the hottest
 * GPU with a lighter replica of another GPU, choosing the exchange that leaves the two GPUs'
 * larger load smallest, as long as that is below the hottest load. Every GPU keeps its slot
 * count, caps and home-node rules hold throughout. Stops when the hottest GPU is at most `target`
 * (e.g. the lower bound plus epsilon), when no exchange helps, or after `maxIterations`.
 *
 * Fast by construction: GPUs are visited lightest first and the scan stops once the mean of the
 * hottest and the next GPU cannot beat the best exchange found; slots stay sorted by load within
 * each GPU, so the best exchange with one GPU is found by a two-pointer walk (the replica whose
 * load is closest to the hottest one's minus half the gap), walking outwards from there past
 * exchanges that break a cap or home rule. Each accepted exchange lowers the hottest
 * load, or the number of GPUs at it, without creating a GPU at or above it, so the search
 * terminates. Returns the number of exchanges made.
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(4, 2, 2);
 * ws.weight.set([60, 50, 20, 10]);
 * ws.count.set([1, 1, 1, 1]);
 * packScope(ws);
 * ws.slotExpert.set([0, 1, 2, 3]); // GPU 0 holds {60, 50}, GPU 1 holds {20, 10}
 * recomputeScopeLoads(ws);
 * refineScope(ws, 70, 100); // 1; ws.gpuLoad = [70, 70]
 * // exchanging 60 and 20 gave {50, 20} and {60, 10}
 * ```
 */
export function refineScope(ws: ScopeWorkspace, target: number, maxIterations: number): number {
  const { numGpus: G, slotsPerGpu: S, slotExpert, replicaLoad, gpuLoad, gpuOrder } = ws;
  if (G < 2 || S < 1) return 0;
  sortSlots(ws);
  sortGpus(ws);
  let swaps = 0;
  for (let it = 0; it < maxIterations; it++) {
    const h = gpuOrder[G - 1];
    const lh = gpuLoad[h];
    if (lh <= target) break;
    const tol = lh * 1e-12;
    let bestScore = lh - tol;
    let bestA = -1;
    let bestB = -1;
    let bestG = -1;
    const hb = h * S;
    for (let i = 0; i < G - 1; i++) {
      const g = gpuOrder[i];
      const lg = gpuLoad[g];
      // The pair's larger load can never drop below its mean; heavier GPUs cannot do better.
      if ((lh + lg) * 0.5 >= bestScore) break;
      const gap = lh - lg;
      const half = gap * 0.5;
      const gb = g * S;
      const gpn = ws.gpusPerNode;
      const crossNode = gpn > 0 && ((h / gpn) | 0) !== ((g / gpn) | 0);
      const hNode = gpn > 0 ? (h / gpn) | 0 : -1;
      let j = gb;
      for (let a = hb; a < hb + S; a++) {
        const ea = slotExpert[a];
        const la = replicaLoad[ea];
        const want = la - half;
        // A home replica that is its expert's last on its home node cannot leave the node.
        if (crossNode && ws.home[ea] === hNode && ws.homeCount[ea] < 2) continue;
        while (j < gb + S && replicaLoad[slotExpert[j]] > want) j++;
        // The score worsens monotonically away from `want` on either side, so the first allowed
        // replica in each direction is the best allowed one for this `a`.
        for (let b = j; b < gb + S; b++) {
          const d = la - replicaLoad[slotExpert[b]];
          if (d >= gap || lg + d >= bestScore) break;
          if (d <= tol) continue;
          if (swapAllowed(ws, a, h, b, g)) {
            bestScore = lg + d;
            bestA = a;
            bestB = b;
            bestG = g;
            break;
          }
        }
        for (let b = j - 1; b >= gb; b--) {
          const d = la - replicaLoad[slotExpert[b]];
          if (d <= tol || lh - d >= bestScore) break;
          if (d >= gap) continue;
          if (swapAllowed(ws, a, h, b, g)) {
            bestScore = lh - d;
            bestA = a;
            bestB = b;
            bestG = g;
            break;
          }
        }
      }
    }
    if (bestA < 0) break;
    applySwap(ws, bestA, h, bestB, bestG);
    resortSlot(ws, h, bestA);
    resortSlot(ws, bestG, bestB);
    resortGpu(ws, h);
    resortGpu(ws, bestG);
    swaps++;
  }
  return swaps;
}

/**
 * Removes duplicates beyond {@link replicaCap} left by packing: for each excess copy, exchanges it
 * with a replica of another GPU where neither expert then exceeds its cap (and home-node rules
 * hold), choosing the exchange that keeps the larger of the two GPU loads smallest. Returns how
 * many excess copies remain (0 unless no legal exchange exists).
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(2, 2, 2);
 * ws.weight.set([10, 8]);
 * ws.count.set([2, 2]);
 * packScope(ws);
 * ws.slotExpert.set([0, 0, 1, 1]); // GPU 0 holds expert 0 twice (2 replicas, 2 GPUs)
 * recomputeScopeLoads(ws);
 * repairDuplicates(ws); // 0; ws.slotExpert = [1, 0, 0, 1]: one copy moved to GPU 1
 * ```
 */
export function repairDuplicates(ws: ScopeWorkspace): number {
  const { numGpus: G, slotsPerGpu: S, slotExpert, replicaLoad, gpuLoad, count } = ws;
  let remaining = 0;
  if (S < 2) return 0;
  for (let g = 0; g < G; g++) {
    for (let a = g * S; a < g * S + S; a++) {
      const e = slotExpert[a];
      if (copiesOn(ws, g, e, -1) <= replicaCap(count[e], G)) continue;
      let bestScore = Number.POSITIVE_INFINITY;
      let bestB = -1;
      let bestG = -1;
      for (let g2 = 0; g2 < G; g2++) {
        if (g2 === g) continue;
        for (let b = g2 * S; b < g2 * S + S; b++) {
          if (slotExpert[b] === e) continue;
          const d = replicaLoad[e] - replicaLoad[slotExpert[b]];
          const score = Math.max(gpuLoad[g] - d, gpuLoad[g2] + d);
          if (score < bestScore && swapAllowed(ws, a, g, b, g2)) {
            bestScore = score;
            bestB = b;
            bestG = g2;
          }
        }
      }
      if (bestB < 0) remaining++;
      else applySwap(ws, a, g, bestB, bestG);
    }
  }
  return remaining;
}

/**
 * Number of excess copies in the scope: for each GPU and expert, copies beyond
 * {@link replicaCap}. Zero means the assignment has no avoidable duplicate.
 *
 * @example
 * ```ts
 * const ws = new ScopeWorkspace();
 * ws.reset(2, 2, 2);
 * ws.weight.set([10, 8]);
 * ws.count.set([2, 2]);
 * packScope(ws);
 * excessCopies(ws); // 0
 * ws.slotExpert.set([0, 0, 1, 1]);
 * excessCopies(ws); // 2: each GPU holds one expert twice where once each would do
 * ```
 */
export function excessCopies(ws: ScopeWorkspace): number {
  const { numGpus: G, slotsPerGpu: S, slotExpert, count } = ws;
  let excess = 0;
  for (let g = 0; g < G; g++) {
    for (let a = g * S; a < g * S + S; a++) {
      const e = slotExpert[a];
      // Count each expert once per GPU: at its first slot there.
      let first = true;
      for (let s = g * S; s < a; s++) if (slotExpert[s] === e) first = false;
      if (!first) continue;
      const m = copiesOn(ws, g, e, -1);
      const cap = replicaCap(count[e], G);
      if (m > cap) excess += m - cap;
    }
  }
  return excess;
}

import type { CountsWorkspace } from "../blocks/counts/index.js";
import { refineScope, repairDuplicates } from "../blocks/refine.js";
import {
  packScope,
  recomputeScopeLoads,
  type ScopeWorkspace,
  scopeLowerBound,
  scopeMaxLoad,
} from "../blocks/scope.js";

/**
 * How much above the best max GPU load a scope's plan may go to give its spare replicas to hot
 * experts (relative), for small scopes (at most 24 experts and 64 slots), where a few coarse
 * replicas make the in-sample optimum arbitrary, and for larger ones. Plans this close are equal
 * in-sample; the one whose largest replica load is smaller keeps its balance better when loads
 * move.
 */
export const HOT_REPLICA_TOLERANCE = { small: 8e-3, large: 1e-3 } as const;

/** Raise steps one pass tries: each packs and refines the scope once. */
const MAX_STEPS = 6;

/**
 * Whether some expert has more replicas than a hotter one: the count search's plans usually give
 * replicas in load order, and only a plan that does not is worth a second look.
 */
function inverted(sc: ScopeWorkspace): boolean {
  const { numExperts: n, weight, count } = sc;
  // The hottest load among experts with fewer replicas than each count: a colder expert with
  // more replicas than a hotter one shows up as a count whose experts are not the hottest.
  let maxCount = 0;
  for (let e = 0; e < n; e++) if (count[e] > maxCount) maxCount = count[e];
  if (maxCount < 2) return false;
  const hottestBelow = new Float64Array(maxCount + 2).fill(-1);
  for (let e = 0; e < n; e++) {
    if (weight[e] > hottestBelow[count[e]]) hottestBelow[count[e]] = weight[e];
  }
  // hottestBelow[c] := hottest expert with at most c replicas.
  for (let c = 2; c <= maxCount; c++)
    hottestBelow[c] = Math.max(hottestBelow[c], hottestBelow[c - 1]);
  for (let e = 0; e < n; e++) {
    if (count[e] >= 2 && hottestBelow[count[e] - 1] > weight[e]) return true;
  }
  return false;
}

/** Largest load per replica of the scope's counts. */
function largestReplicaLoad(sc: ScopeWorkspace): number {
  let max = 0;
  for (let e = 0; e < sc.numExperts; e++) {
    const r = sc.weight[e] / sc.count[e];
    if (r > max) max = r;
  }
  return max;
}

/**
 * Moves spare replicas from cold experts to hot ones while the scope's max GPU load stays within
 * {@link HOT_REPLICA_TOLERANCE} of `best` (its current plan's, held in `sc`) and at most
 * `ceiling` (the reference's plan of the layer: the balanced policy stays never worse than it).
 * Runs only when an expert has more replicas than a hotter one. Each step gives one
 * more replica to every expert at the largest load per replica and takes them from the experts
 * whose load per replica rises least (never below one replica, never to or above the level being
 * lowered), then packs, repairs duplicates and refines; a step that packs within the limit is
 * kept, and the next step starts from the raised counts either way (one step may need the
 * next), as many steps as `work` units pay for (at most six). Leaves in `sc` the plan with the smallest largest replica load found and returns its max
 * GPU load (`best` when nothing better was found).
 *
 * Why: the count search compares plans by max GPU load only, so among equal plans it may give a
 * cold expert four replicas and the hottest one: vLLM's test_eplb_algo asserts the opposite, and
 * such a plan loses its balance first when loads move.
 *
 * @example
 * ```ts
 * // loads [200, 150, 100, 50, 25, 12], 2 GPUs x 5 slots, counts [1, 1, 1, 1, 2, 4] at 268.5:
 * const sc = new ScopeWorkspace();
 * sc.reset(6, 2, 5);
 * sc.weight.set([200, 150, 100, 50, 25, 12]);
 * sc.count.set([1, 1, 1, 1, 2, 4]);
 * scopeLowerBound(sc);
 * packScope(sc);
 * scopeMaxLoad(sc); // 268.5
 * const bestSlots = new Int32Array(10);
 * const bestCounts = new Int32Array(6);
 * preferHotReplicas(sc, 268.5, 270.34, bestSlots, bestCounts, new CountsWorkspace(), 1e4); // 270.33...
 * bestCounts; // Int32Array [3, 2, 2, 1, 1, 1]
 * ```
 */
export function preferHotReplicas(
  sc: ScopeWorkspace,
  best: number,
  ceiling: number,
  bestSlots: Int32Array,
  bestCounts: Int32Array,
  cw: CountsWorkspace,
  work: number,
): number {
  const { numExperts: n, numGpus: G, slotsPerGpu: S, weight, count } = sc;
  const P = G * S;
  if (n === P || best <= 0 || !inverted(sc)) return best;
  const small = n <= 24 && P <= 64;
  const tolerance = small ? HOT_REPLICA_TOLERANCE.small : HOT_REPLICA_TOLERANCE.large;
  const limit = Math.min(best * (1 + tolerance), Math.max(best, ceiling));
  bestSlots.set(sc.slotExpert.subarray(0, P));
  bestCounts.set(count.subarray(0, n));
  let bestLevel = largestReplicaLoad(sc);
  let bestMax = best;
  let improved = false;
  const trial = new Int32Array(n);
  trial.set(count.subarray(0, n));
  // Each step packs and refines once, about four count estimates' work: the layer's search budget
  // (layerWorkBudget) holds whatever the loads.
  const stepCost = 4 * (n + P);
  const steps = Math.min(MAX_STEPS, Math.floor(work / stepCost));
  for (let step = 0; step < steps; step++) {
    let level = 0;
    for (let e = 0; e < n; e++) level = Math.max(level, weight[e] / trial[e]);
    let raised = 0;
    for (let e = 0; e < n; e++) {
      if (weight[e] / trial[e] >= level * (1 - 1e-12)) {
        trial[e]++;
        raised++;
      }
    }
    let ok = true;
    for (let k = 0; k < raised && ok; k++) {
      let donor = -1;
      let donorLoad = Number.POSITIVE_INFINITY;
      for (let e = 0; e < n; e++) {
        if (trial[e] < 2) continue;
        const after = weight[e] / (trial[e] - 1);
        if (after < donorLoad) {
          donorLoad = after;
          donor = e;
        }
      }
      if (donor < 0 || donorLoad >= level) ok = false;
      else trial[donor]--;
    }
    if (!ok) break;
    count.set(trial.subarray(0, n));
    scopeLowerBound(sc);
    packScope(sc);
    repairDuplicates(sc);
    refineScope(sc, limit, 8 * P);
    const max = scopeMaxLoad(sc);
    cw.work += stepCost;
    if (max <= limit) {
      const lvl = largestReplicaLoad(sc);
      if (lvl < bestLevel) {
        bestLevel = lvl;
        bestMax = max;
        bestSlots.set(sc.slotExpert.subarray(0, P));
        bestCounts.set(count.subarray(0, n));
        improved = true;
      }
    }
  }
  sc.slotExpert.set(bestSlots.subarray(0, P));
  count.set(bestCounts.subarray(0, n));
  scopeLowerBound(sc);
  recomputeScopeLoads(sc);
  return improved ? bestMax : best;
}

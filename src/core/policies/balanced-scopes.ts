import {
  type CountSearchOptions,
  homeAwareCounts,
  searchReplicaCounts,
} from "../blocks/counts/index.js";
import { EXACT_LIMITS, improveScopeExact } from "../blocks/exact.js";
import { packGroupsToNodes } from "../blocks/locality.js";
import { excessCopies, refineScope, repairDuplicates } from "../blocks/refine.js";
import { waterFillCounts } from "../blocks/replication.js";
import { packScope, recomputeScopeLoads, scopeLowerBound, scopeMaxLoad } from "../blocks/scope.js";
import type { Topology } from "../model/topology.js";
import { type BalancedWorkspace, NODE_COST } from "./balanced-workspace.js";
import { preferHotReplicas } from "./hot-replicas.js";

/**
 * Search work units a scope may spend per expert and slot on one pass (the first plan, and
 * again on a rescue): with an estimate of a count vector costing about `n + P` units, this is
 * about that many estimates, which keeps a layer within ~20x the reference's time.
 */
const WORK_PER_ITEM = 20;
/**
 * Extra work units a pass may spend on a tiny scope (within the exact solver's limits,
 * {@link EXACT_LIMITS}): reaching the optimum there takes a few thousand nodes of branch and
 * bound, at most ~0.1 ms, however small the reference's time is.
 */
const TINY_SCOPE_WORK = 6000;
/** Scopes with at most this many GPUs also get branch and bound over counts and placement. */
const EXACT_SCOPE_GPUS = 8;

/** Search work units of one pass over a scope of `n` experts and `P` slots. */
function scopeAllowance(n: number, P: number): number {
  const tiny = n <= EXACT_LIMITS.experts && P <= EXACT_LIMITS.replicas;
  return WORK_PER_ITEM * (n + P) + (tiny ? TINY_SCOPE_WORK : 0);
}

/**
 * The most search work (in the units of {@link BalancedWorkspace.work}) one layer of a topology
 * may spend: two passes (the first plan, then a rescue when the reference's plan won) of
 * `WORK_PER_ITEM` (20) units per expert and slot of each scope, plus a fixed 6000 for scopes
 * within the exact solver's limits. Linear in the layer's size whatever the loads.
 *
 * @example
 * ```ts
 * layerWorkBudget(makeTopology(16, 20, 1, 1, 4)); // 1440
 * layerWorkBudget(makeTopology(8, 16, 1, 1, 4)); // 12960
 * ```
 */
export function layerWorkBudget(topology: Topology): number {
  const { numExperts: E, numReplicas: P, numNodes } = topology;
  const scopes = topology.hierarchical && numNodes > 1 ? numNodes : 1;
  return 2 * scopes * scopeAllowance(E / scopes, P / scopes);
}

/**
 * Count search shape by scope: tiny (wide beam), few slots per GPU (mid-sized, large), many
 * slots per GPU (mid-sized, large; only when refinement left more than 0.1% to the bound). The
 * work budget, not `maxTrials`, is what usually ends a search that cannot reach its target.
 */
const SEARCH_TIERS: Array<(n: number, target: number) => CountSearchOptions> = [
  (n, target) => ({ target, maxTrials: 4000, breadth: n, beamWidth: 8, patience: 12 }),
  (_, target) => ({ target, maxTrials: 400, breadth: 8, beamWidth: 2, patience: 8 }),
  (_, target) => ({ target, maxTrials: 300, breadth: 4, beamWidth: 1, patience: 3 }),
  (_, target) => ({ target, maxTrials: 100, breadth: 6, beamWidth: 1, patience: 4 }),
  (_, target) => ({ target, maxTrials: 60, breadth: 4, beamWidth: 1, patience: 3 }),
];

/**
 * Plans one scope held in `ws.scope` (weights set, sizes reset): water-filling counts, packing
 * without duplicates, swap refinement, then, if a gap to the bound remains, a joint search of
 * counts and packing, and for scopes of a few GPUs branch and bound over counts and placement
 * from the best plan so far. Leaves the best assignment found in the scope and returns its max
 * GPU load; sets `ws.scopeProven` when no duplicate-free plan of the scope is better.
 *
 * `floor` is a load the caller accepts anyway (the max of a hotter node already planned): the
 * search stops once the scope is at or below it, since going lower would not lower the layer's
 * max. All search is bounded by `WORK_PER_ITEM * (n + P)` work units per pass.
 */
function solveScope(ws: BalancedWorkspace, epsilon: number, floor: number, rescue: number): number {
  const sc = ws.scope;
  const { numExperts: n, numGpus: G, slotsPerGpu: S } = sc;
  const P = G * S;
  ws.scopeProven = false;
  const passStart = ws.work;
  const allowance = scopeAllowance(n, P);
  // What the pass has not spent goes to giving spare replicas to hot experts.
  const spareToHot = (max: number) => preferSpareToHot(ws, max, allowance - (ws.work - passStart));
  const minReplica = waterFillCounts(sc.weight, n, P, sc.count, ws.counts.replication);
  let total = 0;
  for (let e = 0; e < n; e++) total += sc.weight[e];
  const bound = Math.max(total / G, minReplica);
  const target = Math.max(bound * (1 + epsilon), floor);
  packScope(sc);
  if (S === 1 || G === 1) {
    // Water-filling is optimal with one slot per GPU, and any packing with one GPU.
    ws.scopeProven = true;
    return scopeMaxLoad(sc);
  }
  repairDuplicates(sc);
  refineScope(sc, target, 8 * P);
  let best = scopeMaxLoad(sc);
  if (best <= target) {
    ws.scopeProven = best <= bound * (1 + epsilon);
    return spareToHot(best);
  }
  const few = S <= 4;
  const mid = P <= 128;
  // With many slots per GPU refinement usually lands within 0.1% of the bound, where the greedy
  // estimate the count search compares by is too coarse to help: search only beyond (0.3% for
  // large scopes, where each estimate costs more).
  const slack = mid ? 1.001 : 1.003;
  if (!rescue && !few && n > 24 && best <= Math.max(bound * slack, floor)) {
    return spareToHot(best);
  }
  const tier = n <= 24 && P <= 64 ? 0 : few ? (mid ? 1 : 2) : mid ? 3 : 4;
  const exact = !rescue && G <= EXACT_SCOPE_GPUS;
  const workStart = ws.work;
  const { bestSlots, bestCounts } = ws;
  bestSlots.set(sc.slotExpert.subarray(0, P));
  bestCounts.set(sc.count.subarray(0, n));
  // A rescue (the reference's plan beat this scope) searches by the real packing, wide.
  const search: CountSearchOptions = rescue
    ? { target: Math.max(target, rescue), maxTrials: 800, breadth: 8, beamWidth: 4, patience: 8 }
    : SEARCH_TIERS[tier](n, target);
  // Branch and bound gets at least half of the pass when it runs.
  search.maxWork = exact ? allowance / 2 : allowance;
  // Without branch and bound, tiny scopes with 3+ slots per GPU and rescues score count vectors
  // by the real packing (exact about caps; the greedy estimate is coarse there), at about four
  // estimates' cost each.
  if (rescue || (tier === 0 && !exact && S > 2)) {
    search.evaluate = ws.evaluateByPacking;
    search.trialCost = 4 * (n + P);
  }
  searchReplicaCounts(sc.weight, n, sc.count, G, S, search, ws.counts);
  let changed = false;
  for (let e = 0; e < n; e++) if (sc.count[e] !== bestCounts[e]) changed = true;
  if (changed) {
    packScope(sc);
    repairDuplicates(sc);
    refineScope(sc, target, 8 * P);
    const value = scopeMaxLoad(sc);
    if (value < best) {
      best = value;
      bestSlots.set(sc.slotExpert.subarray(0, P));
      bestCounts.set(sc.count.subarray(0, n));
    }
  }
  if (exact && best > target) {
    const nodes = Math.floor((allowance - (ws.work - workStart)) / NODE_COST);
    if (improveScopeExact(sc, best, nodes, ws.exact) && scopeMaxLoad(sc) < best) {
      best = scopeMaxLoad(sc);
      bestSlots.set(sc.slotExpert.subarray(0, P));
      bestCounts.set(sc.count.subarray(0, n));
    }
    ws.scopeProven = ws.exact.proven;
  }
  sc.slotExpert.set(bestSlots.subarray(0, P));
  sc.count.set(bestCounts.subarray(0, n));
  scopeLowerBound(sc);
  recomputeScopeLoads(sc);
  return spareToHot(best);
}

/**
 * {@link preferHotReplicas} on the scope's plan within `work` units; a plan it changes is no
 * longer proven best.
 */
function preferSpareToHot(ws: BalancedWorkspace, best: number, work: number): number {
  const max = preferHotReplicas(
    ws.scope,
    best,
    ws.hotCeiling,
    ws.bestSlots,
    ws.bestCounts,
    ws.counts,
    work,
  );
  if (max !== best) ws.scopeProven = false;
  return max;
}

/**
 * Plans the scope of `nodeExperts[from .. from + n)` on GPUs `gpuFrom ..` of the layer and writes
 * the result into `phy` / `cnt` (layer-local slots and experts).
 */
export function planNodeScope(
  ws: BalancedWorkspace,
  loads: Float64Array,
  loadOffset: number,
  from: number,
  n: number,
  numGpus: number,
  gpuFrom: number,
  phy: Int32Array,
  cnt: Int32Array,
  epsilon: number,
  floor: number,
  rescue = 0,
): number {
  const sc = ws.scope;
  const S = ws.topology.slotsPerGpu;
  sc.reset(n, numGpus, S);
  for (let i = 0; i < n; i++) sc.weight[i] = loads[loadOffset + ws.nodeExperts[from + i]];
  const max = solveScope(ws, epsilon, floor, rescue);
  for (let s = 0; s < numGpus * S; s++) {
    phy[gpuFrom * S + s] = ws.nodeExperts[from + sc.slotExpert[s]];
  }
  for (let i = 0; i < n; i++) cnt[ws.nodeExperts[from + i]] = sc.count[i];
  return max;
}

/**
 * Improves the reference's plan of a layer in place (`ws.dsPhy` / `ws.dsCnt`) without raising
 * its max GPU load: removes duplicate replicas on a GPU where an exchange allows, then refines by
 * swaps, scope by scope (per node when hierarchical). Used when the reference's plan beats the
 * balanced one, so that the kept plan is at least as good and as clean as possible.
 */
export function polishDeepseek(
  ws: BalancedWorkspace,
  loads: Float64Array,
  loadOffset: number,
): void {
  const t = ws.topology;
  const scopes = t.hierarchical ? t.numNodes : 1;
  const gpusPer = t.numGpus / scopes;
  const slotsPer = t.numReplicas / scopes;
  const S = t.slotsPerGpu;
  const sc = ws.scope;
  const local = ws.rankCounter; // expert -> local id, reused as a scratch map
  for (let node = 0; node < scopes; node++) {
    // Collect the node's experts (those with a slot there) and give them local ids.
    local.fill(-1);
    let n = 0;
    for (let s = node * slotsPer; s < (node + 1) * slotsPer; s++) {
      const e = ws.dsPhy[s];
      if (local[e] < 0) {
        local[e] = n;
        ws.nodeExperts[n] = e;
        n++;
      }
    }
    sc.reset(n, gpusPer, S);
    for (let i = 0; i < n; i++) {
      const e = ws.nodeExperts[i];
      sc.weight[i] = loads[loadOffset + e];
      sc.count[i] = ws.dsCnt[e];
    }
    for (let s = 0; s < slotsPer; s++) sc.slotExpert[s] = local[ws.dsPhy[node * slotsPer + s]];
    const bound = scopeLowerBound(sc);
    recomputeScopeLoads(sc);
    const before = scopeMaxLoad(sc);
    ws.bestSlots.set(sc.slotExpert.subarray(0, slotsPer));
    if (excessCopies(sc) > 0) {
      repairDuplicates(sc);
      if (scopeMaxLoad(sc) > before) {
        // Keep the duplicates rather than a worse plan; refinement below may still help.
        sc.slotExpert.set(ws.bestSlots.subarray(0, slotsPer));
        recomputeScopeLoads(sc);
      }
    }
    refineScope(sc, bound, 8 * slotsPer);
    for (let s = 0; s < slotsPer; s++) {
      ws.dsPhy[node * slotsPer + s] = ws.nodeExperts[sc.slotExpert[s]];
    }
  }
}

/**
 * The strict candidate of a layer into `ws.candPhy` / `ws.candCnt`: one scope of all GPUs
 * (global) or, hierarchical, groups to nodes and one scope per node, hottest node first (the
 * others then only need to stay below its max). With `rescue` > 0, re-plans only the scopes whose
 * max is above it, with the harder search, keeping the rest.
 */
export function planStrict(
  ws: BalancedWorkspace,
  loads: Float64Array,
  loadOffset: number,
  epsilon: number,
  rescue: number,
): void {
  const t = ws.topology;
  const { numExperts: E, numGroups, numNodes } = t;
  const { nodeMax } = ws;
  if (!(t.hierarchical && numNodes > 1)) {
    if (rescue && nodeMax[0] <= rescue) return;
    for (let e = 0; e < E; e++) ws.nodeExperts[e] = e;
    nodeMax[0] = planNodeScope(
      ws,
      loads,
      loadOffset,
      0,
      E,
      t.numGpus,
      0,
      ws.candPhy,
      ws.candCnt,
      epsilon,
      0,
      rescue,
    );
    ws.nodeProven[0] = ws.scopeProven ? 1 : 0;
    return;
  }
  const En = E / numNodes;
  const { nodeOrder, nodeBound } = ws;
  if (!rescue) {
    packGroupsToNodes(
      loads,
      loadOffset,
      {
        numExperts: E,
        numGroups,
        numNodes,
        gpusPerNode: t.gpusPerNode,
        slotsPerNode: t.slotsPerNode,
      },
      ws.nodeOfGroup,
      ws.groups,
    );
    const gs = t.expertsPerGroup;
    let k = 0;
    for (let node = 0; node < numNodes; node++) {
      for (let g = 0; g < numGroups; g++) {
        if (ws.nodeOfGroup[g] !== node) continue;
        for (let j = 0; j < gs; j++) ws.nodeExperts[k++] = g * gs + j;
      }
    }
    for (let node = 0; node < numNodes; node++) {
      nodeBound[node] = ws.groups.nodeBound[node];
      let i = node;
      while (i > 0 && nodeBound[nodeOrder[i - 1]] < nodeBound[node]) {
        nodeOrder[i] = nodeOrder[i - 1];
        i--;
      }
      nodeOrder[i] = node;
    }
  }
  let floor = 0;
  for (let i = 0; i < numNodes; i++) {
    const node = nodeOrder[i];
    if (rescue && nodeMax[node] <= rescue) continue;
    nodeMax[node] = planNodeScope(
      ws,
      loads,
      loadOffset,
      node * En,
      En,
      t.gpusPerNode,
      node * t.gpusPerNode,
      ws.candPhy,
      ws.candCnt,
      epsilon,
      floor,
      rescue,
    );
    ws.nodeProven[node] = ws.scopeProven ? 1 : 0;
    if (!rescue && nodeMax[node] > floor) floor = nodeMax[node];
  }
}

/**
 * Whether a rescue search could bring the strict plan to `limit`: not when a scope above it is
 * already optimal among duplicate-free plans (the layer's max cannot drop below that scope's).
 */
export function rescuable(ws: BalancedWorkspace, limit: number): boolean {
  const scopes = ws.topology.hierarchical && ws.topology.numNodes > 1 ? ws.topology.numNodes : 1;
  for (let node = 0; node < scopes; node++) {
    if (ws.nodeMax[node] > limit && ws.nodeProven[node]) return false;
  }
  return true;
}

/**
 * The relaxed-hierarchy candidate, in two levels. Counts come from {@link homeAwareCounts} (each
 * expert keeps one replica on its group's node, so hot nodes' experts get the extra replicas).
 * Then replicas go to nodes: a scope whose "GPUs" are the nodes (`slotsPerNode` slots each),
 * packed with home rules and refined by swaps, which balances node loads. Finally each node's
 * replicas go to its GPUs exactly as in the strict policy (a replica carries `load / count` of
 * its expert whatever node it sits on).
 */
export function planRelaxed(
  ws: BalancedWorkspace,
  loads: Float64Array,
  loadOffset: number,
  epsilon: number,
): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numNodes, gpusPerNode, slotsPerNode } = t;
  const sc = ws.scope;
  sc.reset(E, numNodes, slotsPerNode, 1);
  const gs = t.expertsPerGroup;
  for (let e = 0; e < E; e++) {
    sc.weight[e] = loads[loadOffset + e];
    sc.home[e] = ws.nodeOfGroup[(e / gs) | 0];
  }
  homeAwareCounts(sc.weight, E, P, sc.home, numNodes, gpusPerNode, sc.count, ws.counts);
  const bound = scopeLowerBound(sc);
  packScope(sc);
  repairDuplicates(sc);
  refineScope(sc, bound * (1 + epsilon), 8 * P);
  const nodeSlots = ws.relaxPhy;
  nodeSlots.set(sc.slotExpert.subarray(0, P));
  ws.relaxCnt.set(sc.count.subarray(0, E));
  // Within each node: the node's replicas of each expert form a local expert whose replicas keep
  // their global load (weight scaled by local / global count).
  const local = ws.rankCounter;
  const S = t.slotsPerGpu;
  let floor = 0;
  for (let node = 0; node < numNodes; node++) {
    local.fill(-1);
    let n = 0;
    const base = node * slotsPerNode;
    for (let s = base; s < base + slotsPerNode; s++) {
      const e = nodeSlots[s];
      if (local[e] < 0) {
        local[e] = n;
        ws.relaxExperts[n] = e;
        ws.relaxLocalCount[n] = 0;
        n++;
      }
      ws.relaxLocalCount[local[e]]++;
    }
    sc.reset(n, gpusPerNode, S);
    let total = 0;
    let largest = 0;
    for (let i = 0; i < n; i++) {
      const e = ws.relaxExperts[i];
      const c = ws.relaxLocalCount[i];
      sc.count[i] = c;
      sc.weight[i] = (loads[loadOffset + e] * c) / ws.relaxCnt[e];
      total += sc.weight[i];
      largest = Math.max(largest, sc.weight[i] / c);
    }
    const target = Math.max(Math.max(total / gpusPerNode, largest) * (1 + epsilon), floor);
    packScope(sc);
    repairDuplicates(sc);
    refineScope(sc, target, 8 * slotsPerNode);
    floor = Math.max(floor, scopeMaxLoad(sc));
    for (let s = 0; s < slotsPerNode; s++) nodeSlots[base + s] = ws.relaxExperts[sc.slotExpert[s]];
  }
}

import { OrderWorkspace, orderDescending } from "../blocks/order.js";
import { greedyReplication } from "../blocks/replication.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { smoothOf } from "./metrics.js";
import type { MigrationWorkspace } from "./state.js";

// Group trades (strict hierarchical layers): when drift has made one node's groups heavier than
// another's, one group is traded for a group of another node.

// Node level (strict hierarchy): temperature of the nodes' smooth maximum, as a fraction of the
// mean node load, and how much above the fresh plan's it must be for a group trade to be tried.
const NODE_SMOOTHING = 0.02;

export const TRADE_TRIGGER = 0.002;

/** Buffers of the group trade (strict hierarchical layers). */
export class GroupTradeWorkspace {
  readonly groupLoad: Float64Array;
  readonly groupSlots: Int32Array;
  readonly nodeLoad: Float64Array;
  readonly free: Int32Array;
  readonly residual: Float64Array;
  readonly holds: Int32Array;
  readonly repPhy: Int32Array;
  readonly repRank: Int32Array;
  readonly repCount: Int32Array;
  readonly repLoad: Float64Array;
  readonly order: Int32Array;
  readonly orderWorkspace = new OrderWorkspace();
  /** The layer with the two groups traded. */
  readonly row: Int32Array;

  constructor(t: Topology) {
    const { numGroups, numNodes, gpusPerNode: gpn, expertsPerGroup: epg, slotsPerNode: Sn } = t;
    this.groupLoad = new Float64Array(numGroups);
    this.groupSlots = new Int32Array(numGroups);
    this.nodeLoad = new Float64Array(numNodes);
    this.free = new Int32Array(gpn);
    this.residual = new Float64Array(gpn);
    this.holds = new Int32Array(gpn * epg);
    this.repPhy = new Int32Array(Sn);
    this.repRank = new Int32Array(Sn);
    this.repCount = new Int32Array(epg);
    this.repLoad = new Float64Array(Sn);
    this.order = new Int32Array(Sn);
    this.row = new Int32Array(t.numReplicas);
  }
}

/** Node loads of the loaded state (`placement` null) or of layer `layer` of `placement`. */
function nodeLoads(ws: MigrationWorkspace, placement: Placement | null, layer: number): void {
  const { numExperts: E, numReplicas: P, slotsPerNode: Sn } = ws.topology;
  const { weight, phy, count } = ws;
  const out = ws.trade.nodeLoad;
  out.fill(0);
  for (let s = 0; s < P; s++) {
    if (placement === null) out[Math.floor(s / Sn)] += weight[phy[s]] / count[phy[s]];
    else {
      const e = placement.phy2log[layer * P + s];
      out[Math.floor(s / Sn)] += weight[e] / placement.logcnt[layer * E + e];
    }
  }
}

/**
 * Strict mode: how much the smooth maximum of the node loads of the loaded state exceeds the
 * fresh plan's (relative; node temperature {@link NODE_SMOOTHING} of the mean node load).
 */
export function nodeExcess(ws: MigrationWorkspace, fresh: Placement, layer: number): number {
  const N = ws.topology.numNodes;
  const a = ws.trade.nodeLoad;
  nodeLoads(ws, null, layer);
  let max = 0;
  let total = 0;
  for (let n = 0; n < N; n++) {
    total += a[n];
    if (a[n] > max) max = a[n];
  }
  const tau = (NODE_SMOOTHING * total) / N;
  const ours = smoothOf(a, N, max, tau);
  nodeLoads(ws, fresh, layer);
  max = 0;
  for (let n = 0; n < N; n++) if (a[n] > max) max = a[n];
  const theirs = smoothOf(a, N, max, tau);
  return theirs > 0 ? ours / theirs - 1 : 0;
}

/**
 * Strict hierarchical layers: when drift has made one node's groups heavier than another's, no
 * move inside a node helps. From the previous state loaded in `ws`, builds the layer with one
 * group traded for a group of another node, the pair that most lowers the smooth maximum of the
 * node loads (temperature {@link NODE_SMOOTHING} of the mean node load): the incoming group's
 * replicas fill exactly the slots the outgoing group leaves (replica counts by greedy
 * replication; heaviest replica first, to the lightest GPU with a free slot, no expert twice on a
 * GPU when avoidable); every other slot stays. Writes the layer to `ws.trade.row` and returns the
 * slots it changes, or -1 when no trade within `budget` lowers it.
 */
export function buildGroupTrade(ws: MigrationWorkspace, budget: number): number {
  const t = ws.topology;
  const { numGroups, numNodes, expertsPerGroup: epg } = t;
  const { weight: w, count, home } = ws;
  const { groupLoad, groupSlots, nodeLoad } = ws.trade;
  nodeLoad.fill(0);
  let total = 0;
  for (let g = 0; g < numGroups; g++) {
    let load = 0;
    let slots = 0;
    for (let e = g * epg; e < (g + 1) * epg; e++) {
      load += w[e];
      slots += count[e];
    }
    groupLoad[g] = load;
    groupSlots[g] = slots;
    nodeLoad[home[g * epg]] += load;
    total += load;
  }
  const tau = (NODE_SMOOTHING * total) / numNodes;
  if (!(tau > 0)) return -1;
  let top = 0;
  for (let n = 0; n < numNodes; n++) if (nodeLoad[n] > top) top = nodeLoad[n];
  let sum = 0;
  for (let n = 0; n < numNodes; n++) sum += Math.exp((nodeLoad[n] - top) / tau);
  let bestSum = sum * (1 - 1e-9);
  let bestA = -1;
  let bestB = -1;
  for (let a = 0; a < numGroups; a++) {
    const na = home[a * epg];
    for (let b = 0; b < numGroups; b++) {
      const nb = home[b * epg];
      if (nb === na || groupLoad[b] >= groupLoad[a]) continue;
      if (groupSlots[a] + groupSlots[b] > budget) continue;
      const delta = groupLoad[b] - groupLoad[a];
      const next =
        sum -
        Math.exp((nodeLoad[na] - top) / tau) -
        Math.exp((nodeLoad[nb] - top) / tau) +
        Math.exp((nodeLoad[na] + delta - top) / tau) +
        Math.exp((nodeLoad[nb] - delta - top) / tau);
      if (next < bestSum) {
        bestSum = next;
        bestA = a;
        bestB = b;
      }
    }
  }
  const n1 = bestA < 0 ? -1 : home[bestA * epg];
  if (bestA < 0) return -1;
  const row = ws.trade.row;
  row.set(ws.prev);
  const n2 = home[bestB * epg];
  placeGroup(ws, bestB, n1, bestA, row);
  placeGroup(ws, bestA, n2, bestB, row);
  return groupSlots[bestA] + groupSlots[bestB];
}

/** Fills the slots of group `leaving` on `node` with replicas of group `incoming`. */
function placeGroup(
  ws: MigrationWorkspace,
  incoming: number,
  node: number,
  leaving: number,
  row: Int32Array,
): void {
  const t = ws.topology;
  const { expertsPerGroup: epg, slotsPerNode: Sn, slotsPerGpu: S, gpusPerNode: gpn } = t;
  const { weight: w, count, prev } = ws;
  const { free, residual, holds, repPhy, repRank, repCount, repLoad, order } = ws.trade;
  const first = node * Sn;
  free.fill(0);
  residual.fill(0);
  holds.fill(0);
  let k = 0;
  for (let s = first; s < first + Sn; s++) {
    const e = prev[s];
    const local = Math.floor((s - first) / S);
    if (Math.floor(e / epg) === leaving) {
      free[local]++;
      k++;
    } else residual[local] += w[e] / count[e];
  }
  const base = incoming * epg;
  greedyReplication(
    w.subarray(base, base + epg),
    epg,
    k,
    repPhy,
    repRank,
    repCount,
    ws.replication,
  );
  for (let r = 0; r < k; r++) repLoad[r] = w[base + repPhy[r]] / repCount[repPhy[r]];
  orderDescending(repLoad, k, order, ws.trade.orderWorkspace);
  for (let i = 0; i < k; i++) {
    const r = order[i];
    const local = repPhy[r];
    let best = -1;
    for (let g = 0; g < gpn; g++) {
      if (free[g] === 0) continue;
      const dup = holds[g * epg + local];
      if (
        best < 0 ||
        dup < holds[best * epg + local] ||
        (dup === holds[best * epg + local] && residual[g] < residual[best])
      ) {
        best = g;
      }
    }
    free[best]--;
    holds[best * epg + local]++;
    residual[best] += repLoad[r];
    for (let s = first + best * S; s < first + (best + 1) * S; s++) {
      if (Math.floor(prev[s] / epg) === leaving && row[s] === prev[s]) {
        row[s] = base + local;
        break;
      }
    }
  }
}

import { RelabelWorkspace } from "../blocks/assignment.js";
import { ReplicationWorkspace } from "../blocks/replication.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { smoothOf } from "./metrics.js";
import { GLOBAL, STRICT } from "./options.js";
import { findGroupHomes, localityError } from "./previous.js";
import { GroupTradeWorkspace } from "./trades.js";

// The state of one layer being migrated: the workspace of buffers, allocated once per topology,
// and the moves that keep it consistent (slots, replica counts, GPU loads, home nodes).

/** Cache of {@link bestSwaps} per ordered GPU pair, valid while both GPUs keep their stamps. */
class PairCache {
  /** Per pair and change in slots (-2..2): the swap's change of the pair's exponentials. */
  readonly gain: Float64Array;
  readonly slotA: Int32Array;
  readonly slotB: Int32Array;
  /** Stamps of the two GPUs when the pair was computed, and each GPU's current stamp. */
  readonly pairStamp: Int32Array;
  readonly gpuStamp: Int32Array;
  /**
   * Per pair: `exp(room / tau)` of the bound on its best swap (0 when it has none), and the two
   * GPUs' stamps when it was computed.
   */
  readonly bound: Float64Array;
  readonly boundStamp: Int32Array;
  /** Per pair: the cheapest change in slots (0..4 for -2..2) a swap of the pair can make. */
  readonly cheapest: Uint8Array;
  /** Per pair: the most negative of its five gains, so most pairs are dismissed at one read. */
  readonly least: Float64Array;
  /** {@link bestSwaps}' view of the cooler GPU's slots: replica load, expert, previous expert. */
  readonly loadB: Float64Array;
  readonly expertB: Int32Array;
  readonly prevB: Int32Array;
  /** Whether the slot's expert may move to the hotter GPU, and whether it changed. */
  readonly movableB: Uint8Array;
  readonly changedB: Int32Array;
  clock = 0;

  constructor(numGpus: number, slotsPerGpu: number) {
    this.gain = new Float64Array(5 * numGpus * numGpus);
    this.slotA = new Int32Array(5 * numGpus * numGpus);
    this.slotB = new Int32Array(5 * numGpus * numGpus);
    this.pairStamp = new Int32Array(2 * numGpus * numGpus).fill(-1);
    this.gpuStamp = new Int32Array(numGpus);
    this.least = new Float64Array(numGpus * numGpus);
    this.bound = new Float64Array(numGpus * numGpus);
    this.boundStamp = new Int32Array(2 * numGpus * numGpus).fill(-1);
    this.cheapest = new Uint8Array(numGpus * numGpus);
    this.loadB = new Float64Array(slotsPerGpu);
    this.expertB = new Int32Array(slotsPerGpu);
    this.prevB = new Int32Array(slotsPerGpu);
    this.movableB = new Uint8Array(slotsPerGpu);
    this.changedB = new Int32Array(slotsPerGpu);
  }
}

/** All buffers one layer's migration needs, allocated once per topology. */
export class MigrationWorkspace {
  readonly topology: Topology;
  /** Locality mode of the layer being migrated. */
  mode = GLOBAL;
  /** Loads of the layer's experts. */
  readonly weight: Float64Array;
  /** Replica count of every expert in the current state. */
  readonly count: Int32Array;
  /** The current state's expert per slot. */
  readonly phy: Int32Array;
  /** The previous placement's expert per slot. */
  readonly prev: Int32Array;
  readonly gpuLoad: Float64Array;
  /** The layer's mean GPU load, and the temperature of its smooth maximum. */
  meanLoad = 0;
  tau = 0;
  /** Largest GPU load of the last {@link placedSmoothMax}. */
  loadMax = 0;
  /** `gpuHas[g * E + e]`: replicas of expert `e` on GPU `g`. */
  readonly gpuHas: Int32Array;
  /** Slots of each expert as doubly linked lists: `head[e]`, `next[s]`, `back[s]`. */
  readonly head: Int32Array;
  readonly next: Int32Array;
  readonly back: Int32Array;
  /** Node of the expert's group (-1 in global mode) and the expert's replicas on it. */
  readonly home: Int32Array;
  readonly homeCount: Int32Array;
  readonly groupHomes: Int32Array;
  readonly nodeHas: Int32Array;
  /** Load change per GPU of the move being evaluated, valid where `mark[g] === stamp`. */
  readonly delta: Float64Array;
  readonly mark: Int32Array;
  readonly touched: Int32Array;
  stamp = 0;
  touchedCount = 0;
  /** Largest new GPU load of the last evaluated move. */
  evalPeak = 0;
  /** Slots differing from the previous placement in the current state. */
  changed = 0;
  /** {@link repair}: per GPU, its lightest replica's load. */
  readonly gpuLightest: Float64Array;
  /** Per expert: slots it held in the previous placement that hold another expert now. */
  readonly lost: Int32Array;
  /** Per expert: what one more replica gains on the GPUs already holding it (a bound). */
  readonly gainAdd: Float64Array;
  /** {@link repair}: 1 for experts whose `gainAdd`, `removeLoss` and `slotLoss` are out of date. */
  readonly expertStale: Uint8Array;
  /** Per expert with spare replicas: load pushed above the target by dropping one replica. */
  readonly removeLoss: Float64Array;
  /** Per slot: its expert's drop-one loss on this slot's GPU. */
  readonly slotLoss: Float64Array;
  /** Per slot: its replica's load (kept up to date by {@link repair} and {@link polish}). */
  readonly slotLoad: Float64Array;
  /**
   * Replica counts the layer moves to (the fresh plan's, or water-filling per node), and whether
   * repair may only move counts toward them.
   */
  readonly goal: Int32Array;
  goalActive = false;
  readonly goalWeight: Float64Array;
  readonly goalCount: Int32Array;
  readonly goalExperts: Int32Array;
  /** {@link polish}: per GPU `exp((L - max) / tau)` and its root, replica load range, order. */
  readonly gpuExp: Float64Array;
  readonly gpuRoot: Float64Array;
  readonly gpuMaxReplica: Float64Array;
  readonly gpuMinReplica: Float64Array;
  readonly gpuOrder: Int32Array;
  /** {@link repair}: 1 where a slot of the GPU differs from the previous placement. */
  readonly gpuEdited: Uint8Array;
  readonly pairs: PairCache;
  /** {@link polish}: per change in slots, the sum change below which a swap may be the best. */
  readonly limits = new Float64Array(5);
  /** The best layer found so far, and the relabelled fresh plan. */
  readonly best: Int32Array;
  readonly candidate: Int32Array;
  readonly rankCount: Int32Array;
  readonly relabel: RelabelWorkspace;
  readonly replication = new ReplicationWorkspace();
  readonly trade: GroupTradeWorkspace;

  constructor(topology: Topology) {
    const { numExperts: E, numReplicas: P, numGpus: G, numNodes: N } = topology;
    this.topology = topology;
    this.weight = new Float64Array(E);
    this.count = new Int32Array(E);
    this.phy = new Int32Array(P);
    this.prev = new Int32Array(P);
    this.gpuLoad = new Float64Array(G);
    this.gpuHas = new Int32Array(G * E);
    this.head = new Int32Array(E);
    this.next = new Int32Array(P);
    this.back = new Int32Array(P);
    this.home = new Int32Array(E);
    this.homeCount = new Int32Array(E);
    this.groupHomes = new Int32Array(topology.numGroups);
    this.nodeHas = new Int32Array(topology.hierarchical ? E * N : 0);
    this.delta = new Float64Array(G);
    this.mark = new Int32Array(G);
    this.touched = new Int32Array(G);
    this.lost = new Int32Array(E);
    this.gpuLightest = new Float64Array(G);
    this.gainAdd = new Float64Array(E);
    this.expertStale = new Uint8Array(E);
    this.removeLoss = new Float64Array(E);
    this.slotLoss = new Float64Array(P);
    this.slotLoad = new Float64Array(P);
    this.goal = new Int32Array(E);
    this.goalWeight = new Float64Array(E);
    this.goalCount = new Int32Array(E);
    this.goalExperts = new Int32Array(E);
    this.gpuExp = new Float64Array(G);
    this.gpuRoot = new Float64Array(G);
    this.gpuMaxReplica = new Float64Array(G);
    this.gpuMinReplica = new Float64Array(G);
    this.gpuOrder = new Int32Array(G);
    this.gpuEdited = new Uint8Array(G);
    this.pairs = new PairCache(G, topology.slotsPerGpu);
    this.best = new Int32Array(P);
    this.candidate = new Int32Array(P);
    this.rankCount = new Int32Array(E);
    this.relabel = new RelabelWorkspace(topology);
    this.trade = new GroupTradeWorkspace(topology);
  }
}

/**
 * Loads layer `l` into the workspace with `start` (at `startOffset`) as the current state. With
 * `asPrevious` it is also the reference that changed slots are counted against, and the source
 * of the groups' home nodes; otherwise (a group trade, strict mode) homes follow `start`.
 */
export function loadState(
  ws: MigrationWorkspace,
  loads: LoadMatrix,
  l: number,
  start: Int32Array,
  startOffset: number,
  asPrevious: boolean,
): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, slotsPerGpu: S, slotsPerNode, expertsPerGroup } = t;
  const { weight, count, phy, prev, gpuHas, head, next, back, home, homeCount } = ws;
  for (let e = 0; e < E; e++) weight[e] = loads.data[l * E + e];
  count.fill(0);
  head.fill(-1);
  gpuHas.fill(0);
  let changed = 0;
  for (let s = P - 1; s >= 0; s--) {
    const e = start[startOffset + s];
    phy[s] = e;
    if (asPrevious) prev[s] = e;
    else if (prev[s] !== e) changed++;
    count[e]++;
    gpuHas[Math.floor(s / S) * E + e]++;
    next[s] = head[e];
    back[s] = -1;
    if (head[e] >= 0) back[head[e]] = s;
    head[e] = s;
  }
  ws.changed = changed;
  const lost = ws.lost;
  lost.fill(0);
  for (let s = 0; s < P; s++) if (prev[s] >= 0 && prev[s] !== phy[s]) lost[prev[s]]++;
  exactMax(ws);
  home.fill(-1);
  homeCount.fill(0);
  if (ws.mode === GLOBAL) return;
  if (asPrevious || ws.mode === STRICT) {
    const bad = findGroupHomes(phy, 0, t, ws.mode, ws.groupHomes, ws.nodeHas);
    if (bad >= 0) throw localityError(phy, 0, t, ws.mode, l, bad, "previous");
  }
  for (let e = 0; e < E; e++) home[e] = ws.groupHomes[Math.floor(e / expertsPerGroup)];
  for (let s = 0; s < P; s++) {
    if (home[phy[s]] === Math.floor(s / slotsPerNode)) homeCount[phy[s]]++;
  }
}

/** Recomputes every GPU's load from scratch (no drift from updates) and returns the largest. */
export function exactMax(ws: MigrationWorkspace): number {
  const { numReplicas: P, numGpus: G, slotsPerGpu: S } = ws.topology;
  const { phy, weight, count, gpuLoad } = ws;
  gpuLoad.fill(0);
  for (let s = 0; s < P; s++) gpuLoad[Math.floor(s / S)] += weight[phy[s]] / count[phy[s]];
  let max = 0;
  for (let g = 0; g < G; g++) if (gpuLoad[g] > max) max = gpuLoad[g];
  return max;
}

/** The smooth maximum of the loaded state's GPU loads ({@link smoothMaxGpuLoad}). */
export function smoothMax(ws: MigrationWorkspace): number {
  const { gpuLoad } = ws;
  const G = ws.topology.numGpus;
  let max = 0;
  for (let g = 0; g < G; g++) if (gpuLoad[g] > max) max = gpuLoad[g];
  return smoothOf(gpuLoad, G, max, ws.tau);
}

/** True when some slot held expert `e` in the previous placement but holds another now. */
export function restorable(ws: MigrationWorkspace, e: number): boolean {
  return ws.lost[e] > 0;
}

function touch(ws: MigrationWorkspace, g: number, d: number): void {
  if (ws.mark[g] !== ws.stamp) {
    ws.mark[g] = ws.stamp;
    ws.delta[g] = d;
    ws.touched[ws.touchedCount++] = g;
  } else ws.delta[g] += d;
}

/**
 * Marks the GPUs that turning slot `b` from expert `x` into expert `y` changes, with their load
 * changes, in `ws.delta` and `ws.touched`.
 */
export function touchRecount(ws: MigrationWorkspace, b: number, x: number, y: number): void {
  const S = ws.topology.slotsPerGpu;
  const { weight: w, count: cnt, next, head } = ws;
  ws.stamp = (ws.stamp + 1) | 0;
  ws.touchedCount = 0;
  const rx = w[x] / cnt[x];
  const ry1 = w[y] / (cnt[y] + 1);
  const dx = w[x] / (cnt[x] - 1) - rx;
  const dy = ry1 - w[y] / cnt[y];
  for (let s = head[x]; s >= 0; s = next[s]) if (s !== b) touch(ws, Math.floor(s / S), dx);
  for (let s = head[y]; s >= 0; s = next[s]) touch(ws, Math.floor(s / S), dy);
  touch(ws, Math.floor(b / S), ry1 - rx);
}

function setSlot(ws: MigrationWorkspace, s: number, e: number): void {
  const { phy, prev, gpuHas, next, back, head, home, homeCount } = ws;
  const { numExperts: E, slotsPerGpu: S, slotsPerNode } = ws.topology;
  const old = phy[s];
  const g = Math.floor(s / S);
  const node = Math.floor(s / slotsPerNode);
  const was = prev[s];
  ws.changed += (e !== was ? 1 : 0) - (old !== was ? 1 : 0);
  if (was >= 0) ws.lost[was] += (e !== was ? 1 : 0) - (old !== was ? 1 : 0);
  if (back[s] >= 0) next[back[s]] = next[s];
  else head[old] = next[s];
  if (next[s] >= 0) back[next[s]] = back[s];
  next[s] = head[e];
  back[s] = -1;
  if (head[e] >= 0) back[head[e]] = s;
  head[e] = s;
  gpuHas[g * E + old]--;
  gpuHas[g * E + e]++;
  if (home[old] === node) homeCount[old]--;
  if (home[e] === node) homeCount[e]++;
  phy[s] = e;
}

export function applySwap(ws: MigrationWorkspace, a: number, b: number): void {
  const S = ws.topology.slotsPerGpu;
  const { phy, weight: w, count: cnt, gpuLoad } = ws;
  const x = phy[a];
  const y = phy[b];
  const d = w[x] / cnt[x] - w[y] / cnt[y];
  gpuLoad[Math.floor(a / S)] -= d;
  gpuLoad[Math.floor(b / S)] += d;
  setSlot(ws, a, y);
  setSlot(ws, b, x);
}

export function applyRecount(ws: MigrationWorkspace, b: number, y: number): void {
  const { phy, count: cnt, gpuLoad, delta, touched } = ws;
  const x = phy[b];
  touchRecount(ws, b, x, y);
  for (let i = 0; i < ws.touchedCount; i++) gpuLoad[touched[i]] += delta[touched[i]];
  cnt[x]--;
  cnt[y]++;
  setSlot(ws, b, y);
}

/**
 * Smooth maximum of layer `layer` of `placement` under the workspace's loads; its largest GPU
 * load goes to `ws.loadMax`. Uses `ws.delta` as scratch.
 */
export function placedSmoothMax(
  ws: MigrationWorkspace,
  placement: Placement,
  layer: number,
): number {
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S } = ws.topology;
  const { delta: load, weight } = ws;
  load.fill(0);
  for (let s = 0; s < P; s++) {
    const e = placement.phy2log[layer * P + s];
    load[Math.floor(s / S)] += weight[e] / placement.logcnt[layer * E + e];
  }
  let max = 0;
  for (let g = 0; g < G; g++) if (load[g] > max) max = load[g];
  ws.loadMax = max;
  return smoothOf(load, G, max, ws.tau);
}

export function writeLayer(
  out: Placement,
  layer: number,
  row: Int32Array,
  E: number,
  P: number,
  count: Int32Array,
): void {
  count.fill(0);
  for (let s = 0; s < P; s++) {
    const e = row[s];
    out.phy2log[layer * P + s] = e;
    out.replicaRank[layer * P + s] = count[e]++;
  }
  out.logcnt.set(count.subarray(0, E), layer * E);
}

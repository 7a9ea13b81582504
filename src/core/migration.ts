import { RelabelWorkspace, relabelLayer } from "./blocks/assignment.js";
import { OrderWorkspace, orderDescending } from "./blocks/order.js";
import {
  greedyReplication,
  minMaxReplicaLoad,
  ReplicationWorkspace,
  waterFillCounts,
} from "./blocks/replication.js";
import { fillEmptySlots, recountFromGiven } from "./empty-slots.js";
import {
  gpuTransferCounts,
  planTransfers,
  type TransferCounts,
  type TransferPlan,
} from "./evaluation/transfers.js";
import { EplbInputError } from "./model/errors.js";
import type { LoadMatrix } from "./model/matrix.js";
import { createPlacement, type Placement, placementFromPhy2log } from "./model/placement.js";
import { localityOf, type Topology } from "./model/topology.js";
import { keepGpuSlots } from "./slots.js";

/** A previous placement as callers hold it: `phy2log` rows `[layers][numReplicas]` or typed. */
export type PreviousPlacement = ReadonlyArray<ArrayLike<number>> | Placement;

/** The user's trade-off between moves and balance when rebalancing from a previous placement. */
export interface MigrationOptions {
  /**
   * Slots per layer that may change expert: an integer >= 0, or a fraction in (0, 1) of
   * `numReplicas` (rounded down); `Infinity` for no limit. `0` returns the previous placement.
   * Default {@link DEFAULT_MOVE_BUDGET}.
   */
  moveBudget?: number;
  /**
   * A layer changes only if its smooth maximum GPU load (see {@link smoothMaxGpuLoad}) drops by
   * at least this fraction, like the engines' utilisation gates. Default
   * {@link DEFAULT_MIN_GAIN}.
   */
  minGain?: number;
  /**
   * The first repair of a layer's largest GPU load stops once it is within this fraction of the
   * fresh plan's. Default {@link DEFAULT_TOLERANCE}.
   */
  tolerance?: number;
  /**
   * Polishing: a swap is made only if it lowers the layer's smooth maximum GPU load by at least
   * this fraction of the mean GPU load per slot it changes. Smaller values buy balance on future
   * traffic with more transfers. Default {@link DEFAULT_SLOT_GAIN}.
   */
  slotGain?: number;
  /**
   * Hierarchical topologies: the relaxed contract of the balanced policy (each expert keeps one
   * replica on its group's node, other replicas may sit anywhere) instead of the strict one
   * (every replica of a group on its group's node). Default false.
   */
  relaxedHierarchy?: boolean;
  /**
   * {@link migratePlacement}: also measure how many slots the fresh plan would change once
   * relabelled onto the previous placement (`freshRelabelledSlotsChanged`); one assignment
   * problem per layer, so off by default.
   */
  compareRelabelled?: boolean;
}

/** Default move budget: a fraction of each layer's slots (room to trade two groups' nodes). */
export const DEFAULT_MOVE_BUDGET = 0.4;
/** Default minimum relative drop of a layer's smooth maximum GPU load for the layer to change. */
export const DEFAULT_MIN_GAIN = 0.002;
/** Default distance to the fresh plan's max GPU load at which the first repair stops. */
export const DEFAULT_TOLERANCE = 0.008;
/** Default smallest gain per changed slot of a polishing swap, as a fraction of the mean load. */
export const DEFAULT_SLOT_GAIN = 4.5e-5;
/**
 * Temperature of the smooth maximum, as a fraction of the layer's mean GPU load: about the
 * step-to-step noise of a GPU's load, so GPUs within a few percent of the largest count almost
 * as much as it.
 */
export const SMOOTHING = 0.03;

// Node level (strict hierarchy): temperature of the nodes' smooth maximum, as a fraction of the
// mean node load, and how much above the fresh plan's it must be for a group trade to be tried.
const NODE_SMOOTHING = 0.02;
const TRADE_TRIGGER = 0.002;
// Replica counts move to the fresh plan's only where the short expert's replicas carry more than
// the spare one's would by this fraction of the mean GPU load: near-ties are not worth a
// transfer. Relative to the GPU, not to the replica: with two slots per GPU a replica is most
// of its GPU's load, and a margin of 5% of the replica (the old rule) left GPUs 5% hotter.
const COUNT_MARGIN = 0.014;
// Pair visits of one polish, per slot of the layer: bounds the work on large flat scopes.
const POLISH_VISITS = 512;

/** {@link MigrationOptions} checked and resolved for one topology. */
export interface MigrationSettings {
  /** Slots per layer that may change, an integer in `0 .. numReplicas`. */
  readonly moveBudget: number;
  readonly minGain: number;
  readonly tolerance: number;
  readonly slotGain: number;
  readonly relaxedHierarchy: boolean;
}

const BUDGET_RULE =
  "must be an integer >= 0 (slots per layer), a fraction in (0, 1) of numReplicas, or Infinity";

function nonNegative(name: string, value: unknown, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !(v >= 0 && Number.isFinite(v))) {
    throw new EplbInputError(name, v, "must be a finite number >= 0");
  }
  return v;
}

/**
 * Checks migration options and resolves the move budget to slots per layer.
 *
 * @example
 * ```ts
 * resolveMigrationSettings({ moveBudget: 0.1 }, 288);
 * // { moveBudget: 28, minGain: 0.002, tolerance: 0.008, slotGain: 0.000045, relaxedHierarchy: false }
 * resolveMigrationSettings({ moveBudget: -1 }, 288);
 * // throws: moveBudget (-1) must be an integer >= 0 (slots per layer), a fraction in (0, 1) ...
 * ```
 */
export function resolveMigrationSettings(
  options: MigrationOptions,
  numReplicas: number,
): MigrationSettings {
  const budget = options.moveBudget ?? DEFAULT_MOVE_BUDGET;
  let moveBudget: number;
  if (typeof budget !== "number" || Number.isNaN(budget) || budget < 0) {
    throw new EplbInputError("moveBudget", budget, BUDGET_RULE);
  } else if (budget === Number.POSITIVE_INFINITY) {
    moveBudget = numReplicas;
  } else if (Number.isInteger(budget)) {
    moveBudget = Math.min(budget, numReplicas);
  } else if (budget < 1) {
    moveBudget = Math.floor(budget * numReplicas);
  } else {
    throw new EplbInputError("moveBudget", budget, BUDGET_RULE);
  }
  const minGain = options.minGain ?? DEFAULT_MIN_GAIN;
  if (typeof minGain !== "number" || !(minGain >= 0 && minGain < 1)) {
    throw new EplbInputError("minGain", minGain, "must be a number in [0, 1)");
  }
  const tolerance = nonNegative("tolerance", options.tolerance, DEFAULT_TOLERANCE);
  const slotGain = nonNegative("slotGain", options.slotGain, DEFAULT_SLOT_GAIN);
  const relaxedHierarchy = options.relaxedHierarchy ?? false;
  if (typeof relaxedHierarchy !== "boolean") {
    throw new EplbInputError("relaxedHierarchy", relaxedHierarchy, "must be true or false");
  }
  return { moveBudget, minGain, tolerance, slotGain, relaxedHierarchy };
}

// Locality modes: no node constraint, every replica of a group on its node, or one replica of
// each expert on its group's node.
const GLOBAL = 0;
const STRICT = 1;
const RELAXED = 2;

function localityMode(topology: Topology, relaxedHierarchy: boolean): number {
  const mode = localityOf(topology, relaxedHierarchy);
  return mode === "global" ? GLOBAL : mode === "strict" ? STRICT : RELAXED;
}

/**
 * Finds every group's home node in one layer: in strict mode the node all its replicas share, in
 * relaxed mode a node holding a replica of each of its experts (the one holding most of the
 * group's replicas). Returns -1, or the first group that has no such node.
 */
function findGroupHomes(
  phy2log: ArrayLike<number>,
  offset: number,
  topology: Topology,
  mode: number,
  homes: Int32Array,
  nodeHas: Int32Array,
): number {
  const { numReplicas: P, numGroups, numNodes: N, expertsPerGroup: epg, slotsPerNode } = topology;
  homes.fill(-1, 0, numGroups);
  if (mode === STRICT) {
    for (let s = 0; s < P; s++) {
      if (phy2log[offset + s] < 0) continue;
      const group = Math.floor(phy2log[offset + s] / epg);
      const node = Math.floor(s / slotsPerNode);
      if (homes[group] === -1) homes[group] = node;
      else if (homes[group] !== node) return group;
    }
    return -1;
  }
  nodeHas.fill(0);
  for (let s = 0; s < P; s++) {
    if (phy2log[offset + s] >= 0) nodeHas[phy2log[offset + s] * N + Math.floor(s / slotsPerNode)]++;
  }
  for (let group = 0; group < numGroups; group++) {
    let best = -1;
    let bestReplicas = -1;
    for (let n = 0; n < N; n++) {
      let replicas = 0;
      let covered = true;
      for (let e = group * epg; e < (group + 1) * epg; e++) {
        const c = nodeHas[e * N + n];
        if (c === 0) {
          covered = false;
          break;
        }
        replicas += c;
      }
      if (covered && replicas > bestReplicas) {
        best = n;
        bestReplicas = replicas;
      }
    }
    if (best < 0) return group;
    homes[group] = best;
  }
  return -1;
}

function localityError(
  phy2log: ArrayLike<number>,
  offset: number,
  topology: Topology,
  mode: number,
  layer: number,
  group: number,
  parameter: string,
): EplbInputError {
  if (mode === RELAXED) {
    return new EplbInputError(
      `${parameter}[${layer}]`,
      `group ${group}`,
      "has no node holding a replica of each of its experts, which the relaxed hierarchy requires",
    );
  }
  const { numReplicas: P, expertsPerGroup: epg, slotsPerNode } = topology;
  const nodes: number[] = [];
  for (let s = 0; s < P && nodes.length < 2; s++) {
    const node = Math.floor(s / slotsPerNode);
    if (Math.floor(phy2log[offset + s] / epg) === group && !nodes.includes(node)) nodes.push(node);
  }
  return new EplbInputError(
    `${parameter}[${layer}]`,
    `group ${group}`,
    `has replicas on nodes ${nodes[0]} and ${nodes[1]}, but with numGroups % numNodes == 0 every replica of a group must stay on one node`,
  );
}

/**
 * The first layer and group where a placement breaks the locality contract, or `null` when it
 * keeps it (always for global topologies). Strict: every replica of a group on one node.
 * Relaxed: some node holds a replica of each of the group's experts.
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 4, 2, 2, 2); // groups {0, 1} and {2, 3}, 2 slots per node
 * localityViolation(placementFromPhy2log([[1, 0, 3, 2]], 4), t); // null
 * localityViolation(placementFromPhy2log([[2, 0, 3, 1]], 4), t); // { layer: 0, group: 1 }
 * ```
 */
export function localityViolation(
  placement: Placement,
  topology: Topology,
  relaxedHierarchy = false,
): { layer: number; group: number } | null {
  const mode = localityMode(topology, relaxedHierarchy);
  if (mode === GLOBAL) return null;
  const homes = new Int32Array(topology.numGroups);
  const nodeHas = new Int32Array(mode === RELAXED ? topology.numExperts * topology.numNodes : 0);
  const P = topology.numReplicas;
  for (let l = 0; l < placement.layers; l++) {
    const group = findGroupHomes(placement.phy2log, l * P, topology, mode, homes, nodeHas);
    if (group >= 0) return { layer: l, group };
  }
  return null;
}

/**
 * Checks a previous placement against the shape it must fit and returns it as a typed
 * {@link Placement} (ranks follow slot order). Wrong layer or slot counts, expert ids out of
 * range, an expert without a replica, or a broken locality contract (hierarchical topologies) is
 * an {@link EplbInputError} naming what is wrong.
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 2, 2, 2);
 * toPreviousPlacement([[0, 1, 0, 2, 3, 3]], 1, t).logcnt; // Int32Array [2, 1, 1, 2]
 * toPreviousPlacement([[0, 1, 0, 2, 3, 9]], 1, t);
 * // throws: previous[0][5] (9) must be an expert id in 0..3
 * toPreviousPlacement([[0, 1, 0, 2, 3]], 1, t);
 * // throws: previous[0].length (5) must equal numReplicas (6)
 * ```
 */
export function toPreviousPlacement(
  previous: PreviousPlacement,
  layers: number,
  topology: Topology,
  relaxedHierarchy = false,
  parameter = "previous",
): Placement {
  const { numReplicas: P, numExperts: E } = topology;
  let rows: ReadonlyArray<ArrayLike<number>>;
  if (isPlacement(previous)) {
    if (previous.layers !== layers) {
      throw new EplbInputError(
        `${parameter}.layers`,
        previous.layers,
        `must equal the layers of the loads (${layers})`,
      );
    }
    if (previous.numExperts !== E) {
      throw new EplbInputError(
        `${parameter}.numExperts`,
        previous.numExperts,
        `must equal the number of experts in the loads (${E})`,
      );
    }
    if (previous.numReplicas !== P) {
      throw new EplbInputError(
        `${parameter}.numReplicas`,
        previous.numReplicas,
        `must equal numReplicas (${P})`,
      );
    }
    if (previous.phy2log.length !== previous.layers * P) {
      throw new EplbInputError(
        `${parameter}.phy2log.length`,
        previous.phy2log.length,
        `must equal layers * numReplicas (${previous.layers} * ${P})`,
      );
    }
    const typed: Int32Array[] = new Array(previous.layers);
    for (let l = 0; l < previous.layers; l++) {
      typed[l] = previous.phy2log.subarray(l * P, (l + 1) * P);
    }
    rows = typed;
  } else if (Array.isArray(previous)) {
    rows = previous;
  } else {
    throw new EplbInputError(
      parameter,
      previous,
      "must be phy2log as a 2-D array [layers][numReplicas] or a Placement",
    );
  }
  if (rows.length !== layers) {
    throw new EplbInputError(
      parameter,
      previous,
      `must have one row per layer of the loads (${layers})`,
    );
  }
  for (let l = 0; l < layers; l++) {
    const row = rows[l];
    if (row === null || typeof row !== "object" || typeof row.length !== "number") {
      throw new EplbInputError(`${parameter}[${l}]`, row, "must be an array of expert ids");
    }
    if (row.length !== P) {
      throw new EplbInputError(
        `${parameter}[${l}].length`,
        row.length,
        `must equal numReplicas (${P})`,
      );
    }
  }
  const placement = placementFromPhy2log(rows, E, parameter, true);
  const mode = localityMode(topology, relaxedHierarchy);
  const empty = placement.phy2log.indexOf(-1);
  if (empty >= 0 && mode !== GLOBAL && topology.numNodes > 1) {
    // Filling an empty slot of a hierarchical placement would have to pick a group's node;
    // refused rather than guessed.
    throw new EplbInputError(
      `${parameter}[${Math.floor(empty / P)}][${empty % P}]`,
      -1,
      "is an empty slot: rebalancing from a placement with empty slots needs one node or the global policy (numGroups % numNodes != 0)",
    );
  }
  if (mode !== GLOBAL) {
    const homes = new Int32Array(topology.numGroups);
    const nodeHas = new Int32Array(mode === RELAXED ? E * topology.numNodes : 0);
    for (let l = 0; l < layers; l++) {
      const group = findGroupHomes(placement.phy2log, l * P, topology, mode, homes, nodeHas);
      if (group >= 0) {
        throw localityError(placement.phy2log, l * P, topology, mode, l, group, parameter);
      }
    }
  }
  return placement;
}

function isPlacement(value: unknown): value is Placement {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    "phy2log" in value &&
    (value as Placement).phy2log instanceof Int32Array
  );
}

/** What happened to one layer. */
export type LayerOutcome = "kept" | "gated" | "repaired" | "regrouped" | "relabelled";

/** The result of {@link migrateLayer}. */
export interface LayerMigration {
  /**
   * `kept`: no change found worth a move (or zero budget), unchanged; `gated`: the best change
   * found gained less than `minGain`, unchanged; `repaired`: the previous placement repaired by a
   * few moves; `regrouped`: one group traded between two nodes, then repaired (strict
   * hierarchical layers whose nodes drifted apart); `relabelled`: the fresh plan relabelled onto
   * the previous one.
   */
  outcome: LayerOutcome;
  /** Slots whose expert differs from the previous placement (`<= moveBudget`). */
  slotsChanged: number;
  /** Max GPU load of the previous placement under the new loads. */
  maxBefore: number;
  /** Max GPU load of the result. */
  maxAfter: number;
  /** Max GPU load of the fresh plan (`NaN` when none was given). */
  maxFresh: number;
  /** The max GPU load the first repair aimed for. */
  target: number;
  /** Smooth maximum GPU load ({@link smoothMaxGpuLoad}) of the previous placement and result. */
  smoothBefore: number;
  smoothAfter: number;
}

/** Buffers of the group trade (strict hierarchical layers). */
class GroupTradeWorkspace {
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

/** Cache of {@link bestSwaps} per ordered GPU pair, valid while both GPUs keep their stamps. */
class PairCache {
  /** Per pair and change in slots (-2..2): the swap's change of the pair's exponentials. */
  readonly gain: Float64Array;
  readonly slotA: Int32Array;
  readonly slotB: Int32Array;
  /** Stamps of the two GPUs when the pair was computed, and each GPU's current stamp. */
  readonly pairStamp: Int32Array;
  readonly gpuStamp: Int32Array;
  clock = 0;

  constructor(numGpus: number) {
    this.gain = new Float64Array(5 * numGpus * numGpus);
    this.slotA = new Int32Array(5 * numGpus * numGpus);
    this.slotB = new Int32Array(5 * numGpus * numGpus);
    this.pairStamp = new Int32Array(2 * numGpus * numGpus).fill(-1);
    this.gpuStamp = new Int32Array(numGpus);
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
  /** Per expert: what one more replica gains on the GPUs already holding it (a bound). */
  readonly gainAdd: Float64Array;
  /** Per expert with spare replicas: load pushed above the target by dropping one replica. */
  readonly removeLoss: Float64Array;
  /** Per slot: its expert's drop-one loss on this slot's GPU. */
  readonly slotLoss: Float64Array;
  /** Per slot: its replica's load (or Infinity in {@link repair} when `h` holds its expert). */
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
  readonly pairs: PairCache;
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
    this.gainAdd = new Float64Array(E);
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
    this.pairs = new PairCache(G);
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
function loadState(
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
function exactMax(ws: MigrationWorkspace): number {
  const { numReplicas: P, numGpus: G, slotsPerGpu: S } = ws.topology;
  const { phy, weight, count, gpuLoad } = ws;
  gpuLoad.fill(0);
  for (let s = 0; s < P; s++) gpuLoad[Math.floor(s / S)] += weight[phy[s]] / count[phy[s]];
  let max = 0;
  for (let g = 0; g < G; g++) if (gpuLoad[g] > max) max = gpuLoad[g];
  return max;
}

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
function repair(ws: MigrationWorkspace, target: number, budget: number): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S, gpusPerNode } = t;
  const { slotsPerNode: Sn } = t;
  const { weight: w, count: cnt, phy, prev, gpuLoad, gpuHas, goal } = ws;
  const { home, homeCount, head, next, gainAdd, removeLoss, slotLoss, slotLoad } = ws;
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
    // loads, and whether h already holds a slot's expert, are read once per move.
    for (let s = scopeStart * S; s < scopeEnd * S; s++) {
      const e = phy[s];
      slotLoad[s] = gpuHas[h * E + e] > 0 ? Number.POSITIVE_INFINITY : w[e] / cnt[e];
    }
    for (let ja = 0; ja < S; ja++) {
      const a = hBase + ja;
      const x = phy[a];
      const rx = w[x] / cnt[x];
      // Relaxed mode: x may leave h's node unless it is x's last replica on its home node.
      const xMayLeave = mode !== RELAXED || home[x] !== hNode || homeCount[x] > 1;
      for (let g = scopeStart; g < scopeEnd; g++) {
        if (g === h) continue;
        const Lg = gpuLoad[g];
        // Load moved onto a GPU above the target costs as much excess as it removes from h.
        if (Lg >= target || gpuHas[g * E + x] > 0) continue;
        const gNode = Math.floor(g / gpusPerNode);
        const crossing = mode === RELAXED && gNode !== hNode;
        if (crossing && !xMayLeave) continue;
        for (let jb = 0; jb < S; jb++) {
          const b = g * S + jb;
          const d = rx - slotLoad[b];
          if (d <= eps) continue;
          const y = phy[b];
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
    if (bestKind === 1) applySwap(ws, bestA, bestB);
    else applyRecount(ws, bestA, bestB);
  }
}

/**
 * The replica counts the loaded state moves to: in strict hierarchical layers, water-filling
 * within each node over its groups' experts (so counts fit the node's slots whatever groups it
 * holds); otherwise the fresh plan's counts, or without one water-filling over the layer.
 * Writes `ws.goal`.
 */
function goalCounts(ws: MigrationWorkspace, fresh: Placement | null, layer: number): void {
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
function alignCounts(ws: MigrationWorkspace, limit: number): void {
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
function polish(ws: MigrationWorkspace, budget: number, perSlot: number, stopAt: number): void {
  const t = ws.topology;
  const { numGpus: G, slotsPerGpu: S, gpusPerNode, numReplicas: P } = t;
  const { count: cnt, phy, gpuLoad, slotLoad, weight, gpuOrder: order } = ws;
  const { gpuExp: ex, gpuRoot: root, gpuMaxReplica: maxR, gpuMinReplica: minR } = ws;
  const { gain, slotA, slotB, pairStamp, gpuStamp } = ws.pairs;
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
          const room = Math.min(gap / 2, maxR[g1] - minR[g2]);
          if (room <= 0) continue;
          const f = Math.exp(room / tau);
          if (e1 * (1 / f - 1) + ex[g2] * (f - 1) >= floor) continue;
          bestSwaps(ws, g1, g2, gap);
          pairStamp[2 * pair] = gpuStamp[g1];
          pairStamp[2 * pair + 1] = gpuStamp[g2];
        }
        for (let c = 0; c < 5; c++) {
          const h = gain[5 * pair + c];
          const x = e1 * h;
          if (h >= 0 || x >= floor || c - 2 > budgetLeft) continue;
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
  for (let ja = 0; ja < S; ja++) {
    const a = g1 * S + ja;
    const x = phy[a];
    const rx = slotLoad[a];
    if (gpuHas[g2 * E + x] > 0) continue;
    if (crossing && home[x] === n1 && homeCount[x] <= 1) continue;
    const xChanged = x !== prev[a] ? 1 : 0;
    for (let jb = 0; jb < S; jb++) {
      const b = g2 * S + jb;
      const d = rx - slotLoad[b];
      if (d <= 0 || d >= gap) continue;
      const y = phy[b];
      if (gpuHas[g1 * E + y] > 0) continue;
      if (crossing && home[y] === n2 && homeCount[y] <= 1) continue;
      const cost =
        (y !== prev[a] ? 1 : 0) + (x !== prev[b] ? 1 : 0) - xChanged - (y !== prev[b] ? 1 : 0);
      const off = d > half ? d - half : half - d;
      const k = base + cost + 2;
      if (off < gain[k]) {
        gain[k] = off;
        slotA[k] = a;
        slotB[k] = b;
      }
    }
  }
  const tail = Math.exp(-gap / tau);
  for (let k = base; k < base + 5; k++) {
    if (slotA[k] < 0) {
      gain[k] = 0;
      continue;
    }
    const d = half + gain[k];
    gain[k] = Math.expm1(-d / tau) + Math.exp((d - gap) / tau) - tail;
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

/** The smooth maximum of `load[0..n)` at temperature `tau`, given their largest value. */
function smoothOf(load: ArrayLike<number>, n: number, max: number, tau: number): number {
  if (!(tau > 0)) return max;
  let sum = 0;
  for (let g = 0; g < n; g++) sum += Math.exp((load[g] - max) / tau);
  return max + tau * Math.log(sum);
}

/**
 * The smooth maximum GPU load of one layer of a placement: `tau * log(sum_g exp(L_g / tau))` with
 * `tau = smoothing * mean GPU load` ({@link SMOOTHING} by default). It lies between the largest
 * GPU load and that plus `tau * log(numGpus)`, and counts every GPU within a few `tau` of the
 * largest almost as much as the largest: a bound on the expected largest load when every GPU's
 * load varies by about `tau`, which is what the rebalancing from a previous placement minimises.
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * // GPU loads [8, 7], mean 7.5, tau 0.225: 8 + 0.225 * log(1 + exp(-1 / 0.225))
 * smoothMaxGpuLoad(new Float64Array([8, 4, 3]), 0, p.phy2log, 0, p.logcnt, 0, 2, 4); // 8.0026...
 * smoothMaxGpuLoad(new Float64Array([8, 4, 3]), 0, p.phy2log, 0, p.logcnt, 0, 2, 4, 0); // 8
 * ```
 */
export function smoothMaxGpuLoad(
  loads: Float64Array,
  loadOffset: number,
  phy2log: Int32Array,
  slotOffset: number,
  logcnt: Int32Array,
  countOffset: number,
  numGpus: number,
  numReplicas: number,
  smoothing = SMOOTHING,
): number {
  const S = numReplicas / numGpus;
  const gpu = new Float64Array(numGpus);
  let max = 0;
  let total = 0;
  for (let g = 0; g < numGpus; g++) {
    for (let j = 0; j < S; j++) {
      const e = phy2log[slotOffset + g * S + j];
      gpu[g] += loads[loadOffset + e] / logcnt[countOffset + e];
    }
    total += gpu[g];
    if (gpu[g] > max) max = gpu[g];
  }
  return smoothOf(gpu, numGpus, max, (smoothing * total) / numGpus);
}

/** The smooth maximum of the loaded state's GPU loads ({@link smoothMaxGpuLoad}). */
function smoothMax(ws: MigrationWorkspace): number {
  const { gpuLoad } = ws;
  const G = ws.topology.numGpus;
  let max = 0;
  for (let g = 0; g < G; g++) if (gpuLoad[g] > max) max = gpuLoad[g];
  return smoothOf(gpuLoad, G, max, ws.tau);
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
function nodeExcess(ws: MigrationWorkspace, fresh: Placement, layer: number): number {
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

/** True when some slot held expert `e` in the previous placement but holds another now. */
function restorable(ws: MigrationWorkspace, e: number): boolean {
  const { prev, phy } = ws;
  for (let s = 0; s < prev.length; s++) if (prev[s] === e && phy[s] !== e) return true;
  return false;
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
function touchRecount(ws: MigrationWorkspace, b: number, x: number, y: number): void {
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

function setSlot(ws: MigrationWorkspace, s: number, e: number): void {
  const { phy, prev, gpuHas, next, back, head, home, homeCount } = ws;
  const { numExperts: E, slotsPerGpu: S, slotsPerNode } = ws.topology;
  const old = phy[s];
  const g = Math.floor(s / S);
  const node = Math.floor(s / slotsPerNode);
  ws.changed += (e !== prev[s] ? 1 : 0) - (old !== prev[s] ? 1 : 0);
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

function applySwap(ws: MigrationWorkspace, a: number, b: number): void {
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

function applyRecount(ws: MigrationWorkspace, b: number, y: number): void {
  const { phy, count: cnt, gpuLoad, delta, touched } = ws;
  const x = phy[b];
  touchRecount(ws, b, x, y);
  for (let i = 0; i < ws.touchedCount; i++) gpuLoad[touched[i]] += delta[touched[i]];
  cnt[x]--;
  cnt[y]++;
  setSlot(ws, b, y);
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
function buildGroupTrade(ws: MigrationWorkspace, budget: number): number {
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

/**
 * Rebalances one layer starting from its previous placement: the unit a simulator calls every
 * rebalance. The layer's replica counts move to the fresh plan's (in strict hierarchical layers,
 * water-filling within each node), one slot each; a repair brings its largest GPU load within
 * `tolerance` of the fresh plan's (or without a fresh plan, of the lower bound); a polish then
 * lowers its smooth maximum GPU load ({@link smoothMaxGpuLoad}: the GPUs just below the largest
 * count too, as they do on future traffic) by swaps worth at least `slotGain` per slot. In strict
 * hierarchical layers whose node loads drifted apart further than the fresh plan's, trading one
 * group between two nodes is tried too; when the result still falls short of the target and the
 * fresh plan, relabelled onto the previous placement, fits the budget and is better by
 * `minGain`, the fresh plan is taken. The layer changes only if its smooth maximum drops by at
 * least `minGain`. At most `moveBudget` slots change, and the locality contract of the mode is
 * kept. Writes layer `layer` of `out` (which may be `previous` itself).
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 1, 1, 3);
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4); // made for other loads
 * const out = createPlacement(1, 6, 4);
 * migrateLayer(loads, previous, null, 0, out, resolveMigrationSettings({ moveBudget: 2 }, 6),
 *   new MigrationWorkspace(t));
 * // { outcome: "repaired", slotsChanged: 2, maxBefore: 40, maxAfter: 35, ... }
 * ```
 */
export function migrateLayer(
  loads: LoadMatrix,
  previous: Placement,
  fresh: Placement | null,
  layer: number,
  out: Placement,
  settings: MigrationSettings,
  ws: MigrationWorkspace,
): LayerMigration {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G } = t;
  ws.mode = localityMode(t, settings.relaxedHierarchy);
  ws.goalActive = false;
  loadState(ws, loads, layer, previous.phy2log, layer * P, true);
  let total = 0;
  for (let e = 0; e < E; e++) total += ws.weight[e];
  ws.meanLoad = total / G;
  ws.tau = SMOOTHING * ws.meanLoad;
  const maxBefore = exactMax(ws);
  const smoothBefore = smoothMax(ws);
  let maxFresh = Number.NaN;
  let smoothFresh = Number.NaN;
  let target: number;
  if (fresh !== null) {
    smoothFresh = placedSmoothMax(ws, fresh, layer);
    maxFresh = ws.loadMax;
    target = maxFresh * (1 + settings.tolerance);
  } else {
    const bound = Math.max(total / G, minMaxReplicaLoad(ws.weight, E, P, ws.replication));
    target = bound * (1 + settings.tolerance);
  }
  const result: LayerMigration = {
    outcome: "kept",
    slotsChanged: 0,
    maxBefore,
    maxAfter: maxBefore,
    maxFresh,
    target,
    smoothBefore,
    smoothAfter: smoothBefore,
  };
  const budget = settings.moveBudget;
  const keep = 1 - settings.minGain;
  if (budget > 0) {
    // The trade is built from the previous state, before anything changes it.
    const tradeChanged =
      ws.mode === STRICT && (fresh === null || nodeExcess(ws, fresh, layer) > TRADE_TRIGGER)
        ? buildGroupTrade(ws, budget)
        : -1;
    improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings);
    let outcome: LayerOutcome = "repaired";
    let changed = ws.changed;
    let smooth = smoothMax(ws);
    let maxAfter = exactMax(ws);
    if (changed > 0 && !(smooth <= smoothBefore * keep && maxAfter <= maxBefore)) {
      // Small budgets: the count changes alone may spend them and fail the gate; repair and
      // polish with free counts, as before counts were held, may still pass it.
      loadState(ws, loads, layer, previous.phy2log, layer * P, true);
      improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings, false);
      changed = ws.changed;
      smooth = smoothMax(ws);
      maxAfter = exactMax(ws);
    }
    const best = ws.best;
    best.set(ws.phy);
    // Without a fresh plan to compare node loads with, a trade is tried when repair falls short.
    if (tradeChanged > 0 && tradeChanged < budget && (fresh !== null || maxAfter > target)) {
      loadState(ws, loads, layer, ws.trade.row, 0, false);
      improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings);
      const traded = smoothMax(ws);
      const tradedMax = exactMax(ws);
      if (traded < smooth && tradedMax <= maxBefore) {
        outcome = "regrouped";
        changed = ws.changed;
        smooth = traded;
        maxAfter = tradedMax;
        best.set(ws.phy);
      }
    }
    if (maxAfter > target && fresh !== null && smoothFresh < smooth && budget > changed) {
      const relabelled = relabelLayer(
        ws.prev,
        0,
        fresh.phy2log,
        layer * P,
        t,
        ws.candidate,
        0,
        ws.relabel,
      );
      if (relabelled <= budget && smoothFresh <= smooth * keep) {
        best.set(ws.candidate);
        changed = relabelled;
        smooth = smoothFresh;
        maxAfter = maxFresh;
        outcome = "relabelled";
      }
    }
    if (changed > 0) {
      // The layer's largest GPU load never rises either: every move of the repair and the
      // polish keeps it, and a count change or trade that raised it is not taken.
      if (smooth <= smoothBefore * keep && maxAfter <= maxBefore) {
        // An expert that stays on a GPU keeps one of its slots there (no local copy); the order
        // within a GPU changes no load, and unchanged slots can only grow.
        changed = keepGpuSlots(previous.phy2log, layer * P, best, 0, P, t.slotsPerGpu);
        result.outcome = outcome;
        result.slotsChanged = changed;
        result.maxAfter = maxAfter;
        result.smoothAfter = smooth;
        writeLayer(out, layer, best, E, P, ws.rankCount);
        return result;
      }
      result.outcome = "gated";
    }
  }
  writeLayer(out, layer, ws.prev, E, P, ws.rankCount);
  return result;
}

/**
 * From the state loaded in `ws`: replica counts to their goal ({@link goalCounts},
 * {@link alignCounts}; unless `counts` is false), then {@link repair} toward `target` with the
 * counts held there, then {@link polish} down to the fresh plan's smooth maximum `smoothFresh`
 * at most.
 */
function improve(
  ws: MigrationWorkspace,
  fresh: Placement | null,
  layer: number,
  target: number,
  smoothFresh: number,
  budget: number,
  settings: MigrationSettings,
  counts = true,
): void {
  // Relaxed layers without a fresh plan have no goal that respects the home nodes.
  if (counts && (fresh !== null || ws.mode !== RELAXED)) {
    goalCounts(ws, fresh, layer);
    alignCounts(ws, budget);
    exactMax(ws);
    ws.goalActive = true;
  }
  repair(ws, target, budget);
  // Beyond the fresh plan's smooth maximum, moves buy balance a plan from scratch would not have.
  polish(ws, budget, settings.slotGain * ws.meanLoad, smoothFresh);
  ws.goalActive = false;
}

/**
 * Smooth maximum of layer `layer` of `placement` under the workspace's loads; its largest GPU
 * load goes to `ws.loadMax`. Uses `ws.delta` as scratch.
 */
function placedSmoothMax(ws: MigrationWorkspace, placement: Placement, layer: number): number {
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

function writeLayer(
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

/** Migration figures for a whole model. */
export interface MigrationMetrics {
  /** Resolved settings: slots per layer that may change, minimum gain, tolerance, slot gain. */
  moveBudget: number;
  minGain: number;
  tolerance: number;
  slotGain: number;
  /** Slots whose expert changed, over all layers. */
  slotsChanged: number;
  /** `slotsChanged / (layers * numReplicas)`. */
  slotsChangedShare: number;
  slotsChangedPerLayer: number[];
  /** Layers by outcome (see {@link LayerMigration}). */
  layersKept: number;
  layersGated: number;
  layersRepaired: number;
  layersRegrouped: number;
  layersRelabelled: number;
  /** Transfers by kind. */
  transfers: TransferCounts;
  /**
   * The most expert weights any one GPU copies in from other GPUs (same node or another), over
   * all layers: the busiest receiver bounds how long applying the rebalance takes.
   */
  maxGpuTransfersIn: number;
  /** The most expert weights other GPUs read from any one GPU, over all layers. */
  maxGpuTransfersOut: number;
  /** Per layer: max GPU load of the previous placement under the new loads. */
  maxLoadBefore: number[];
  /** Per layer: max GPU load of the result. */
  maxLoadAfter: number[];
  /** Per layer: max GPU load of the fresh plan from scratch. */
  maxLoadFresh: number[];
  /** Mean over layers of before / fresh max GPU load (1 for all-zero layers). */
  beforeOverFresh: number;
  /** Mean over layers of after / fresh max GPU load. */
  afterOverFresh: number;
  /** Worst layer's after / fresh. */
  worstAfterOverFresh: number;
  /** Slots the fresh plan changes as the policy returns it. */
  freshSlotsChanged: number;
  /**
   * Slots the fresh plan changes once relabelled onto the previous placement (`null` unless
   * `compareRelabelled` was set).
   */
  freshRelabelledSlotsChanged: number | null;
}

/** A whole model migrated: the placement, what it costs to get there and how good it is. */
export interface Migration {
  placement: Placement;
  metrics: MigrationMetrics;
  transfers: TransferPlan;
  layers: LayerMigration[];
}

/**
 * Rebalances every layer from a previous placement (see {@link migrateLayer}), plans the weight
 * transfers and measures the result against the previous placement and the fresh plan. The
 * previous placement is checked with {@link toPreviousPlacement}.
 *
 * @example
 * ```ts
 * const t = makeTopology(256, 288, 8, 4, 32);
 * const before = lognormalLoads(58, 256, 1.0, 7);
 * const previousPhy2log = rebalanceExperts(before, 288, 8, 4, 32, { policy: "deepseek" }).phy2log;
 * const loads = { ...before, data: before.data.map((x, i) => x * (1 + 0.05 * Math.sin(i))) }; // drift
 * const fresh = planDeepseek(loads, t);
 * const m = migratePlacement(loads, previousPhy2log, fresh, t, { moveBudget: 0.1 });
 * // m.metrics.slotsChangedShare = 0.02..., m.metrics.afterOverFresh = 1.005..., m.transfers.local = 0
 * ```
 */
export function migratePlacement(
  loads: LoadMatrix,
  previous: PreviousPlacement,
  fresh: Placement,
  topology: Topology,
  options: MigrationOptions = {},
): Migration {
  const { numExperts: E, numReplicas: P } = topology;
  const settings = resolveMigrationSettings(options, P);
  const given = toPreviousPlacement(previous, loads.layers, topology, settings.relaxedHierarchy);
  // Empty slots (-1, vLLM's elastic EP) are filled first: the plan starts from the filled
  // placement, and every count below is taken against the placement as given.
  const hasEmpty = given.phy2log.indexOf(-1) >= 0;
  const prev = hasEmpty ? fillEmptySlots(loads, given, topology.slotsPerGpu) : given;
  const out = createPlacement(loads.layers, P, E);
  const ws = new MigrationWorkspace(topology);
  const layers: LayerMigration[] = new Array(loads.layers);
  const relabelled = new Int32Array(P);
  const metrics: MigrationMetrics = {
    moveBudget: settings.moveBudget,
    minGain: settings.minGain,
    tolerance: settings.tolerance,
    slotGain: settings.slotGain,
    slotsChanged: 0,
    slotsChangedShare: 0,
    slotsChangedPerLayer: new Array(loads.layers),
    layersKept: 0,
    layersGated: 0,
    layersRepaired: 0,
    layersRegrouped: 0,
    layersRelabelled: 0,
    transfers: { local: 0, intraNode: 0, interNode: 0 },
    maxGpuTransfersIn: 0,
    maxGpuTransfersOut: 0,
    maxLoadBefore: new Array(loads.layers),
    maxLoadAfter: new Array(loads.layers),
    maxLoadFresh: new Array(loads.layers),
    beforeOverFresh: 0,
    afterOverFresh: 0,
    worstAfterOverFresh: 0,
    freshSlotsChanged: 0,
    freshRelabelledSlotsChanged: options.compareRelabelled ? 0 : null,
  };
  for (let l = 0; l < loads.layers; l++) {
    const r = migrateLayer(loads, prev, fresh, l, out, settings, ws);
    layers[l] = r;
    metrics.slotsChanged += r.slotsChanged;
    metrics.slotsChangedPerLayer[l] = r.slotsChanged;
    if (r.outcome === "kept") metrics.layersKept++;
    else if (r.outcome === "gated") metrics.layersGated++;
    else if (r.outcome === "repaired") metrics.layersRepaired++;
    else if (r.outcome === "regrouped") metrics.layersRegrouped++;
    else metrics.layersRelabelled++;
    metrics.maxLoadBefore[l] = r.maxBefore;
    metrics.maxLoadAfter[l] = r.maxAfter;
    metrics.maxLoadFresh[l] = r.maxFresh;
    const before = r.maxFresh > 0 ? r.maxBefore / r.maxFresh : 1;
    const after = r.maxFresh > 0 ? r.maxAfter / r.maxFresh : 1;
    metrics.beforeOverFresh += before / loads.layers;
    metrics.afterOverFresh += after / loads.layers;
    if (after > metrics.worstAfterOverFresh) metrics.worstAfterOverFresh = after;
    for (let s = 0; s < P; s++) {
      if (fresh.phy2log[l * P + s] !== given.phy2log[l * P + s]) metrics.freshSlotsChanged++;
    }
    if (metrics.freshRelabelledSlotsChanged !== null) {
      metrics.freshRelabelledSlotsChanged += relabelLayer(
        prev.phy2log,
        l * P,
        fresh.phy2log,
        l * P,
        topology,
        relabelled,
        0,
        ws.relabel,
      );
    }
  }
  if (hasEmpty) recountFromGiven(loads, given, out, topology, metrics);
  metrics.slotsChangedShare = metrics.slotsChanged / (loads.layers * P);
  const transfers = planTransfers(given, out, topology);
  metrics.transfers = {
    local: transfers.local,
    intraNode: transfers.intraNode,
    interNode: transfers.interNode,
  };
  const { remoteIn, remoteOut } = gpuTransferCounts(transfers, topology);
  metrics.maxGpuTransfersIn = Math.max(0, ...remoteIn);
  metrics.maxGpuTransfersOut = Math.max(0, ...remoteOut);
  return { placement: out, metrics, transfers, layers };
}

import { RelabelWorkspace, relabelLayer } from "./assignment.js";
import { EplbInputError } from "./errors.js";
import type { LoadMatrix } from "./matrix.js";
import { OrderWorkspace, orderDescending } from "./order.js";
import { createPlacement, type Placement, placementFromPhy2log } from "./placement.js";
import { greedyReplication, minMaxReplicaLoad, ReplicationWorkspace } from "./replication.js";
import type { Topology } from "./topology.js";
import { planTransfers, type TransferCounts, type TransferPlan } from "./transfers.js";

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
   * A layer changes only if its max GPU load drops by at least this fraction (like the engines'
   * utilisation gates). Default {@link DEFAULT_MIN_GAIN}.
   */
  minGain?: number;
  /**
   * Repair of a layer stops once its max GPU load is within this fraction of the fresh plan's:
   * moves beyond that buy balance that a plan from scratch would not have either, and cost
   * transfers. Default {@link DEFAULT_TOLERANCE}.
   */
  tolerance?: number;
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
/** Default minimum relative drop of a layer's max GPU load for the layer to change. */
export const DEFAULT_MIN_GAIN = 0.002;
/** Default distance to the fresh plan's max GPU load at which repair stops. */
export const DEFAULT_TOLERANCE = 0.008;

/** {@link MigrationOptions} checked and resolved for one topology. */
export interface MigrationSettings {
  /** Slots per layer that may change, an integer in `0 .. numReplicas`. */
  readonly moveBudget: number;
  readonly minGain: number;
  readonly tolerance: number;
  readonly relaxedHierarchy: boolean;
}

const BUDGET_RULE =
  "must be an integer >= 0 (slots per layer), a fraction in (0, 1) of numReplicas, or Infinity";

/**
 * Checks migration options and resolves the move budget to slots per layer.
 *
 * @example
 * ```ts
 * resolveMigrationSettings({ moveBudget: 0.1 }, 288);
 * // { moveBudget: 28, minGain: 0.002, tolerance: 0.008, relaxedHierarchy: false }
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
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  if (typeof tolerance !== "number" || !(tolerance >= 0 && Number.isFinite(tolerance))) {
    throw new EplbInputError("tolerance", tolerance, "must be a finite number >= 0");
  }
  const relaxedHierarchy = options.relaxedHierarchy ?? false;
  if (typeof relaxedHierarchy !== "boolean") {
    throw new EplbInputError("relaxedHierarchy", relaxedHierarchy, "must be true or false");
  }
  return { moveBudget, minGain, tolerance, relaxedHierarchy };
}

// Locality modes: no node constraint, every replica of a group on its node, or one replica of
// each expert on its group's node.
const GLOBAL = 0;
const STRICT = 1;
const RELAXED = 2;

function localityMode(topology: Topology, relaxedHierarchy: boolean): number {
  if (!topology.hierarchical) return GLOBAL;
  return relaxedHierarchy ? RELAXED : STRICT;
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
      const group = Math.floor(phy2log[offset + s] / epg);
      const node = Math.floor(s / slotsPerNode);
      if (homes[group] === -1) homes[group] = node;
      else if (homes[group] !== node) return group;
    }
    return -1;
  }
  nodeHas.fill(0);
  for (let s = 0; s < P; s++) nodeHas[phy2log[offset + s] * N + Math.floor(s / slotsPerNode)]++;
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
  const placement = placementFromPhy2log(rows, E, parameter);
  const mode = localityMode(topology, relaxedHierarchy);
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
   * `kept`: already within tolerance of the target (or zero budget), unchanged; `gated`: the
   * best change found gained less than `minGain`, unchanged; `repaired`: the previous placement
   * repaired by a few moves; `regrouped`: one group traded between two nodes, then repaired
   * (strict hierarchical layers whose heaviest node is the bottleneck); `relabelled`: the fresh
   * plan relabelled onto the previous one.
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
  /** The max GPU load the repair aimed for. */
  target: number;
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
  /** Per slot: its replica's load, or Infinity when the hottest GPU holds its expert. */
  readonly slotLoad: Float64Array;
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
    this.best = new Int32Array(P);
    this.candidate = new Int32Array(P);
    this.rankCount = new Int32Array(E);
    this.relabel = new RelabelWorkspace(topology);
    this.trade = new GroupTradeWorkspace(topology);
  }
}

/**
 * Max GPU load of one layer of a placement under loads (a replica carries `load / count`).
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * layerMaxGpuLoad(new Float64Array([8, 2, 4]), 0, p.phy2log, 0, p.logcnt, 0, 2, 4); // 8
 * ```
 */
export function layerMaxGpuLoad(
  loads: Float64Array,
  loadOffset: number,
  phy2log: Int32Array,
  slotOffset: number,
  logcnt: Int32Array,
  countOffset: number,
  numGpus: number,
  numReplicas: number,
): number {
  const S = numReplicas / numGpus;
  let max = 0;
  for (let g = 0; g < numGpus; g++) {
    let sum = 0;
    for (let j = 0; j < S; j++) {
      const e = phy2log[slotOffset + g * S + j];
      sum += loads[loadOffset + e] / logcnt[countOffset + e];
    }
    if (sum > max) max = sum;
  }
  return max;
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
  const { weight, count, phy, prev, gpuLoad, gpuHas, head, next, back, home, homeCount } = ws;
  for (let e = 0; e < E; e++) weight[e] = loads.data[l * E + e];
  count.fill(0);
  head.fill(-1);
  gpuHas.fill(0);
  gpuLoad.fill(0);
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
  for (let s = 0; s < P; s++) {
    const e = phy[s];
    gpuLoad[Math.floor(s / S)] += weight[e] / count[e];
  }
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

/**
 * Repairs the state loaded in `ws` towards `target` with at most `budget` changed slots: a
 * steepest descent on the total load above the target per changed slot, always from the hottest
 * GPU `h`, over three moves: swap a replica on `h` with a lighter one elsewhere; add a replica of
 * an expert on `h` in place of a spare replica elsewhere; give a spare replica on `h` to another
 * expert. A move must lighten `h` and leave every GPU below `h`'s old load, creates no second
 * replica of an expert on a GPU, and keeps the locality mode. Stops when `h` is at or below the
 * target, cannot improve, or the budget is spent.
 */
function repair(ws: MigrationWorkspace, target: number, budget: number): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S, gpusPerNode } = t;
  const { slotsPerNode: Sn } = t;
  const { weight: w, count: cnt, phy, prev, gpuLoad, gpuHas, home, homeCount, head, next } = ws;
  const { gainAdd, removeLoss, slotLoss, slotLoad } = ws;
  const mode = ws.mode;
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
          const gain =
            exH -
            (nh > target ? nh - target : 0) +
            (Lg > target ? Lg - target : 0) -
            (ng > target ? ng - target : 0);
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

    // Recounts: slot b's expert x (a spare replica) becomes y. Either y is on h (h's share of y
    // shrinks) or b is on h (h drops x's replica). gainAdd and removeLoss bound a candidate's
    // gain from above, so most are dismissed without a full evaluation.
    for (let y = 0; y < E; y++) {
      const cy = cnt[y];
      const dy = w[y] / (cy + 1) - w[y] / cy;
      let gy = 0;
      for (let s = head[y]; s >= 0; s = next[s]) {
        const L = gpuLoad[Math.floor(s / S)];
        if (L > target) gy += L - target - (L + dy > target ? L + dy - target : 0);
      }
      gainAdd[y] = gy;
      if (cy < 2) continue;
      const dx = w[y] / (cy - 1) - w[y] / cy;
      let loss = 0;
      for (let s = head[y]; s >= 0; s = next[s]) {
        const L = gpuLoad[Math.floor(s / S)];
        const term = (L + dx > target ? L + dx - target : 0) - (L > target ? L - target : 0);
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
      for (let b = from; b < to; b++) {
        const x = phy[b];
        if (x === y || cnt[x] < 2) continue;
        const gb = Math.floor(b / S);
        if (gpuHas[gb * E + y] > 0) continue;
        if (mode === RELAXED && home[x] * Sn <= b && b < (home[x] + 1) * Sn && homeCount[x] <= 1) {
          continue;
        }
        const Lb = gpuLoad[gb];
        const nb = Lb + ry1 - w[x] / cnt[x];
        if (nb >= Lh - eps) continue;
        const cost = (y !== prev[b] ? 1 : 0) - (x !== prev[b] ? 1 : 0);
        if (cost > budgetLeft) continue;
        const divisor = COST_DIVISOR[cost + 2];
        const bound =
          gy +
          (Lb > target ? Lb - target : 0) -
          (nb > target ? nb - target : 0) -
          (removeLoss[x] - slotLoss[b]);
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
      if (mode === RELAXED && home[x] === hNode && homeCount[x] <= 1) continue;
      const rx = w[x] / cnt[x];
      for (let y = 0; y < E; y++) {
        if (y === x || gpuHas[h * E + y] > 0) continue;
        if (mode === STRICT && home[y] !== hNode) continue;
        // h must get lighter: its new replica must carry less than the one it drops.
        const nh = Lh - rx + w[y] / (cnt[y] + 1);
        if (nh >= Lh - eps) continue;
        const cost = (y !== prev[a] ? 1 : 0) - (x !== prev[a] ? 1 : 0);
        if (cost > budgetLeft) continue;
        const divisor = COST_DIVISOR[cost + 2];
        const bound =
          gainAdd[y] + exH - (nh > target ? nh - target : 0) - (removeLoss[x] - slotLoss[a]);
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
    if (bestKind === 0) return;
    if (bestKind === 1) applySwap(ws, bestA, bestB);
    else applyRecount(ws, bestA, bestB);
  }
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
 * Gain (reduction of the total load above `target`) of turning slot `b` from expert `x` into
 * expert `y`, or 0 when the move is not allowed: it must lighten the hottest GPU `h` and leave
 * every GPU below `Lh`. Sets `ws.evalPeak` to the largest new load of a touched GPU.
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
  const S = ws.topology.slotsPerGpu;
  const { weight: w, count: cnt, next, head, gpuLoad, delta, touched } = ws;
  ws.stamp = (ws.stamp + 1) | 0;
  ws.touchedCount = 0;
  const cx = cnt[x];
  const cy = cnt[y];
  const dx = w[x] / (cx - 1) - w[x] / cx;
  const dy = w[y] / (cy + 1) - w[y] / cy;
  for (let s = head[x]; s >= 0; s = next[s]) if (s !== b) touch(ws, Math.floor(s / S), dx);
  for (let s = head[y]; s >= 0; s = next[s]) touch(ws, Math.floor(s / S), dy);
  touch(ws, Math.floor(b / S), w[y] / (cy + 1) - w[x] / cx);
  if (ws.mark[h] !== ws.stamp || delta[h] >= -eps) return 0;
  let gain = 0;
  let peak = 0;
  for (let i = 0; i < ws.touchedCount; i++) {
    const g = touched[i];
    const L = gpuLoad[g];
    const nL = L + delta[g];
    if (nL >= Lh - eps) return 0;
    if (nL > peak) peak = nL;
    gain += (L > target ? L - target : 0) - (nL > target ? nL - target : 0);
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
  const S = ws.topology.slotsPerGpu;
  const { phy, weight: w, count: cnt, gpuLoad, head, next } = ws;
  const x = phy[b];
  const cx = cnt[x];
  const cy = cnt[y];
  const dx = w[x] / (cx - 1) - w[x] / cx;
  const dy = w[y] / (cy + 1) - w[y] / cy;
  for (let s = head[x]; s >= 0; s = next[s]) if (s !== b) gpuLoad[Math.floor(s / S)] += dx;
  for (let s = head[y]; s >= 0; s = next[s]) gpuLoad[Math.floor(s / S)] += dy;
  gpuLoad[Math.floor(b / S)] += w[y] / (cy + 1) - w[x] / cx;
  cnt[x]--;
  cnt[y]++;
  setSlot(ws, b, y);
}

/**
 * Strict hierarchical layers: when drift has made one node's groups heavier than another's, no
 * move inside a node helps. From the previous state loaded in `ws`, builds the layer with one
 * group of the heaviest node traded for a group of another node (the pair that most lowers the
 * larger of the two node loads): the incoming group's replicas fill exactly the slots the
 * outgoing group leaves (replica counts by greedy replication; heaviest replica first, to the
 * lightest GPU with a free slot, no expert twice on a GPU when avoidable); every other slot stays.
 * Writes the layer to `ws.trade.row` and returns the slots it changes, or -1 when no trade lowers
 * the heaviest node within `budget`.
 */
function buildGroupTrade(ws: MigrationWorkspace, budget: number): number {
  const t = ws.topology;
  const { numGroups, numNodes, expertsPerGroup: epg } = t;
  const { weight: w, count, home } = ws;
  const { groupLoad, groupSlots, nodeLoad } = ws.trade;
  nodeLoad.fill(0);
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
  }
  let n1 = 0;
  for (let n = 1; n < numNodes; n++) if (nodeLoad[n] > nodeLoad[n1]) n1 = n;
  let bestA = -1;
  let bestB = -1;
  let bestPeak = nodeLoad[n1] * (1 - 1e-9);
  for (let a = 0; a < numGroups; a++) {
    if (home[a * epg] !== n1) continue;
    for (let b = 0; b < numGroups; b++) {
      const n2 = home[b * epg];
      if (n2 === n1 || groupSlots[a] + groupSlots[b] > budget) continue;
      const delta = groupLoad[b] - groupLoad[a];
      const peak = Math.max(nodeLoad[n1] + delta, nodeLoad[n2] - delta);
      if (peak < bestPeak) {
        bestPeak = peak;
        bestA = a;
        bestB = b;
      }
    }
  }
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
 * rebalance. Unless the previous layer is already within `tolerance` of the target (the fresh
 * plan's max GPU load, or without a fresh plan the lower bound), it is repaired by a few moves
 * (swaps, replica-count changes) within the move budget; in strict hierarchical layers whose
 * heaviest node is the bottleneck, trading one group between two nodes is tried too; when that
 * still falls short and the fresh plan, relabelled onto the previous placement, fits the budget,
 * the fresh plan is taken. A bigger change must beat a smaller one by `minGain`, and the layer
 * changes only if its max GPU load drops by at least `minGain`. The locality contract of the
 * mode is kept. Writes layer `layer` of `out` (which may be `previous` itself).
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
  loadState(ws, loads, layer, previous.phy2log, layer * P, true);
  const maxBefore = exactMax(ws);
  let maxFresh = Number.NaN;
  let target: number;
  if (fresh !== null) {
    maxFresh = layerMaxGpuLoad(
      loads.data,
      layer * E,
      fresh.phy2log,
      layer * P,
      fresh.logcnt,
      layer * E,
      G,
      P,
    );
    target = maxFresh * (1 + settings.tolerance);
  } else {
    let total = 0;
    for (let e = 0; e < E; e++) total += ws.weight[e];
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
  };
  const budget = settings.moveBudget;
  const keep = 1 - settings.minGain;
  if (budget > 0 && maxBefore > target) {
    const tradeChanged = ws.mode === STRICT ? buildGroupTrade(ws, budget) : -1;
    repair(ws, target, budget);
    let outcome: LayerOutcome = "repaired";
    let changed = ws.changed;
    let maxAfter = changed > 0 ? exactMax(ws) : maxBefore;
    const best = ws.best;
    best.set(ws.phy);
    if (maxAfter > target && tradeChanged > 0 && tradeChanged < budget) {
      loadState(ws, loads, layer, ws.trade.row, 0, false);
      repair(ws, target, budget);
      const traded = exactMax(ws);
      if (traded < maxAfter && traded <= maxAfter * keep) {
        outcome = "regrouped";
        changed = ws.changed;
        maxAfter = traded;
        best.set(ws.phy);
      }
    }
    if (maxAfter > target && fresh !== null && maxFresh < maxAfter && budget > changed) {
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
      if (relabelled <= budget && maxFresh <= maxAfter * keep) {
        best.set(ws.candidate);
        changed = relabelled;
        maxAfter = maxFresh;
        outcome = "relabelled";
      }
    }
    if (changed > 0) {
      if (maxAfter < maxBefore && maxAfter <= maxBefore * keep) {
        result.outcome = outcome;
        result.slotsChanged = changed;
        result.maxAfter = maxAfter;
        writeLayer(out, layer, best, E, P, ws.rankCount);
        return result;
      }
      result.outcome = "gated";
    }
  }
  writeLayer(out, layer, ws.prev, E, P, ws.rankCount);
  return result;
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
  /** Resolved settings: slots per layer that may change, minimum gain, tolerance. */
  moveBudget: number;
  minGain: number;
  tolerance: number;
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
 * const fresh = planDeepseek(loads, t);
 * const m = migratePlacement(loads, previousPhy2log, fresh, t, { moveBudget: 0.1 });
 * // m.metrics.slotsChangedShare = 0.03, m.metrics.afterOverFresh = 1.007, m.transfers.local = ...
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
  const prev = toPreviousPlacement(previous, loads.layers, topology, settings.relaxedHierarchy);
  const out = createPlacement(loads.layers, P, E);
  const ws = new MigrationWorkspace(topology);
  const layers: LayerMigration[] = new Array(loads.layers);
  const relabelled = new Int32Array(P);
  const metrics: MigrationMetrics = {
    moveBudget: settings.moveBudget,
    minGain: settings.minGain,
    tolerance: settings.tolerance,
    slotsChanged: 0,
    slotsChangedShare: 0,
    slotsChangedPerLayer: new Array(loads.layers),
    layersKept: 0,
    layersGated: 0,
    layersRepaired: 0,
    layersRegrouped: 0,
    layersRelabelled: 0,
    transfers: { local: 0, intraNode: 0, interNode: 0 },
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
      if (fresh.phy2log[l * P + s] !== prev.phy2log[l * P + s]) metrics.freshSlotsChanged++;
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
  metrics.slotsChangedShare = metrics.slotsChanged / (loads.layers * P);
  const transfers = planTransfers(prev, out, topology);
  metrics.transfers = {
    local: transfers.local,
    intraNode: transfers.intraNode,
    interNode: transfers.interNode,
  };
  return { placement: out, metrics, transfers, layers };
}

import { EplbInputError } from "../model/errors.js";
import { type Placement, placementFromPhy2log } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { GLOBAL, localityMode, RELAXED, STRICT } from "./options.js";

// The previous placement a migration starts from: checked against the shape it must fit and the
// locality contract of its mode (every group's home node).

/** A previous placement as callers hold it: `phy2log` rows `[layers][numReplicas]` or typed. */
export type PreviousPlacement = ReadonlyArray<ArrayLike<number>> | Placement;

/**
 * Finds every group's home node in one layer: in strict mode the node all its replicas share, in
 * relaxed mode a node holding a replica of each of its experts (the one holding most of the
 * group's replicas). Returns -1, or the first group that has no such node.
 */
export function findGroupHomes(
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

export function localityError(
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
 * // throws: previous[0][5] (9) must be an expert id in 0..3 or -1 (an empty slot)
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

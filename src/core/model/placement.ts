import { EplbInputError } from "./errors.js";

/**
 * A plan for every layer in flat typed arrays (row-major, named strides):
 * - `phy2log[l * numReplicas + s]`: the logical expert in slot `s` of layer `l`;
 * - `replicaRank[l * numReplicas + s]`: which of its expert's replicas that slot is (0-based);
 * - `logcnt[l * numExperts + e]`: how many replicas expert `e` has in layer `l`.
 */
export interface Placement {
  readonly layers: number;
  readonly numReplicas: number;
  readonly numExperts: number;
  readonly phy2log: Int32Array;
  readonly replicaRank: Int32Array;
  readonly logcnt: Int32Array;
}

/** The reference's return value: nested arrays shaped exactly as `rebalance_experts` returns. */
export interface ReferencePlacement {
  /** `[layers][numReplicas]`. */
  phy2log: number[][];
  /** `[layers][numExperts][X]`, slots in replica-rank order padded with -1; X = largest count. */
  log2phy: number[][][];
  /** `[layers][numExperts]`. */
  logcnt: number[][];
}

/**
 * An all-zero placement of the given shape, for policies to fill.
 *
 * @example
 * ```ts
 * createPlacement(2, 16, 12).phy2log.length; // 32
 * ```
 */
export function createPlacement(
  layers: number,
  numReplicas: number,
  numExperts: number,
): Placement {
  return {
    layers,
    numReplicas,
    numExperts,
    phy2log: new Int32Array(layers * numReplicas),
    replicaRank: new Int32Array(layers * numReplicas),
    logcnt: new Int32Array(layers * numExperts),
  };
}

/**
 * Largest replica count of any expert in any layer: the width `X` of `log2phy`.
 *
 * @example
 * ```ts
 * maxReplicaCount(placementFromPhy2log([[0, 1, 0]], 2)); // 2
 * ```
 */
export function maxReplicaCount(p: Placement): number {
  let x = 0;
  for (let i = 0; i < p.logcnt.length; i++) if (p.logcnt[i] > x) x = p.logcnt[i];
  return x;
}

/**
 * Converts a typed {@link Placement} to the reference's nested `phy2log`, `log2phy`, `logcnt`.
 *
 * @example
 * ```ts
 * toReferencePlacement(placementFromPhy2log([[0, 1, 0]], 2));
 * // { phy2log: [[0, 1, 0]], log2phy: [[[0, 2], [1, -1]]], logcnt: [[2, 1]] }
 * ```
 */
export function toReferencePlacement(p: Placement): ReferencePlacement {
  const { layers, numReplicas: P, numExperts: E } = p;
  const width = maxReplicaCount(p);
  const phy2log: number[][] = new Array(layers);
  const log2phy: number[][][] = new Array(layers);
  const logcnt: number[][] = new Array(layers);
  for (let l = 0; l < layers; l++) {
    phy2log[l] = Array.from(p.phy2log.subarray(l * P, (l + 1) * P));
    logcnt[l] = Array.from(p.logcnt.subarray(l * E, (l + 1) * E));
    const rows: number[][] = new Array(E);
    for (let e = 0; e < E; e++) rows[e] = new Array(width).fill(-1);
    for (let s = 0; s < P; s++) {
      const e = p.phy2log[l * P + s];
      if (e >= 0) rows[e][p.replicaRank[l * P + s]] = s;
    }
    log2phy[l] = rows;
  }
  return { phy2log, log2phy, logcnt };
}

/**
 * Builds a {@link Placement} from `phy2log` alone (as engines store it): counts come from the map
 * and replica ranks follow slot order. Rejects expert ids out of range, ragged rows and experts
 * without a replica. With `allowEmpty`, `-1` marks an empty slot (vLLM's elastic expert
 * parallelism writes it for slots without an expert); it gets rank `-1`, counts for no expert and
 * carries no load. Only the code that reads engine placements allows it: every plan fills every
 * slot.
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[1, 0, 1]], 2);
 * // p.logcnt = Int32Array [1, 2], p.replicaRank = Int32Array [0, 0, 1]
 * placementFromPhy2log([[0, -1, 1]], 2, "phy2log", true).logcnt; // Int32Array [1, 1]
 * ```
 */
export function placementFromPhy2log(
  phy2log: ReadonlyArray<ArrayLike<number>>,
  numExperts: number,
  parameter = "phy2log",
  allowEmpty = false,
): Placement {
  const layers = phy2log.length;
  if (layers === 0) throw new EplbInputError(parameter, phy2log, "must have at least one layer");
  const P = phy2log[0].length;
  if (P === 0)
    throw new EplbInputError(`${parameter}[0]`, phy2log[0], "must have at least one slot");
  const p = createPlacement(layers, P, numExperts);
  for (let l = 0; l < layers; l++) {
    const row = phy2log[l];
    if (row.length !== P) {
      throw new EplbInputError(
        `${parameter}[${l}].length`,
        row.length,
        `must equal ${P} like ${parameter}[0]`,
      );
    }
    for (let s = 0; s < P; s++) {
      const e = row[s];
      if (allowEmpty && e === -1) {
        p.phy2log[l * P + s] = -1;
        p.replicaRank[l * P + s] = -1;
        continue;
      }
      if (!Number.isInteger(e) || e < 0 || e >= numExperts) {
        throw new EplbInputError(
          `${parameter}[${l}][${s}]`,
          e,
          `must be an expert id in 0..${numExperts - 1}${allowEmpty ? " or -1 (an empty slot)" : ""}`,
        );
      }
      p.phy2log[l * P + s] = e;
      p.replicaRank[l * P + s] = p.logcnt[l * numExperts + e]++;
    }
    for (let e = 0; e < numExperts; e++) {
      if (p.logcnt[l * numExperts + e] === 0) {
        throw new EplbInputError(
          `${parameter}[${l}]`,
          `expert ${e}`,
          "has no replica: every expert needs at least one slot",
        );
      }
    }
  }
  return p;
}

/**
 * Checks the invariants every plan must satisfy and returns the first violation as text, or
 * `null` when the placement is valid: counts sum to the slots, every expert has a replica,
 * `logcnt` matches `phy2log`, and each expert's ranks are exactly `0 .. count-1`.
 *
 * @example
 * ```ts
 * placementViolation(placementFromPhy2log([[0, 1, 0]], 2)); // null
 * ```
 */
export function placementViolation(p: Placement): string | null {
  const { layers, numReplicas: P, numExperts: E } = p;
  const seen = new Int32Array(E);
  const rankSeen = new Uint8Array(P);
  for (let l = 0; l < layers; l++) {
    seen.fill(0);
    for (let s = 0; s < P; s++) {
      const e = p.phy2log[l * P + s];
      if (e === -1) continue;
      if (e < 0 || e >= E) return `layer ${l} slot ${s}: expert ${e} out of range`;
      seen[e]++;
    }
    for (let e = 0; e < E; e++) {
      if (seen[e] === 0) return `layer ${l}: expert ${e} has no replica`;
      if (seen[e] !== p.logcnt[l * E + e]) {
        return `layer ${l}: expert ${e} has ${seen[e]} slots but logcnt ${p.logcnt[l * E + e]}`;
      }
    }
    // Ranks of each expert must be a permutation of 0..count-1: mark (expert, rank) pairs.
    const offsets = new Int32Array(E + 1);
    for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + seen[e];
    rankSeen.fill(0);
    for (let s = 0; s < P; s++) {
      const e = p.phy2log[l * P + s];
      const r = p.replicaRank[l * P + s];
      if (e === -1) {
        if (r !== -1) return `layer ${l} slot ${s}: empty slot with rank ${r} (must be -1)`;
        continue;
      }
      if (r < 0 || r >= seen[e])
        return `layer ${l} slot ${s}: rank ${r} out of range for expert ${e}`;
      if (rankSeen[offsets[e] + r]) return `layer ${l}: expert ${e} has rank ${r} twice`;
      rankSeen[offsets[e] + r] = 1;
    }
  }
  return null;
}

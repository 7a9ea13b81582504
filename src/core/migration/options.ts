import { EplbInputError } from "../model/errors.js";
import { localityOf, type Topology } from "../model/topology.js";

// Migration options: the user's trade-off between moves and balance, checked and resolved, and
// the locality mode they settle for a topology.

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
export const GLOBAL = 0;

export const STRICT = 1;

export const RELAXED = 2;

export function localityMode(topology: Topology, relaxedHierarchy: boolean): number {
  const mode = localityOf(topology, relaxedHierarchy);
  return mode === "global" ? GLOBAL : mode === "strict" ? STRICT : RELAXED;
}

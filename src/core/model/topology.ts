import { EplbInputError, requireInteger } from "./errors.js";
import { checkShapeLimits } from "./limits.js";

/**
 * The cluster shape a plan is made for, validated once at the boundary so inner code can trust
 * it. Slots are numbered GPU-major: GPU `g` holds slots `g * slotsPerGpu ..`, node `n` holds GPUs
 * `n * gpusPerNode ..`.
 */
export interface Topology {
  /** Logical experts per layer (`E`). */
  readonly numExperts: number;
  /** Physical slots per layer (`P`, `numReplicas`). */
  readonly numReplicas: number;
  readonly numGroups: number;
  readonly numNodes: number;
  readonly numGpus: number;
  /** `P / numGpus`. */
  readonly slotsPerGpu: number;
  /** `numGpus / numNodes`. */
  readonly gpusPerNode: number;
  /** `P / numNodes`. */
  readonly slotsPerNode: number;
  /** `E / numGroups` (hierarchical); not an integer on the global path when groups do not divide `E`. */
  readonly expertsPerGroup: number;
  /**
   * True when `numGroups % numNodes == 0`: groups are packed onto nodes first and every replica
   * of a group stays on its group's node (the reference's hierarchical policy). Otherwise the
   * global policy runs and groups are ignored.
   */
  readonly hierarchical: boolean;
}

/**
 * The cluster shape an evaluator reads: a {@link Topology}, or (for a placement read without one,
 * e.g. an engine's file) just the GPU count, with one node and no groups by default.
 */
export type ClusterShape = Pick<Topology, "numGpus"> &
  Partial<Pick<Topology, "numNodes" | "numGroups">>;

/**
 * Validates the reference's preconditions and derives the sizes every policy needs. Accepts what
 * the reference accepts, with one exception: `numNodes` must divide `numGpus` on the global path
 * too (the reference never looks at nodes there; eplb needs them to tell intra- from inter-node
 * transfers, and GPUs cannot be split evenly across nodes otherwise).
 *
 * @example
 * ```ts
 * const t = makeTopology(256, 288, 8, 4, 32);
 * t; // { slotsPerGpu: 9, gpusPerNode: 8, hierarchical: true }
 * makeTopology(16, 16, 4, 2, 6);
 * // throws EplbInputError: numGpus (6) must divide numReplicas (16)
 * makeTopology(4, 8, 3, 2, 4).hierarchical; // false: 3 groups on 2 nodes is the global path
 * ```
 */
export function makeTopology(
  numExperts: number,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
): Topology {
  requireInteger("numExperts", numExperts, 1);
  requireInteger("numReplicas", numReplicas, 1);
  requireInteger("numGroups", numGroups, 1);
  requireInteger("numNodes", numNodes, 1);
  requireInteger("numGpus", numGpus, 1);
  checkShapeLimits({
    experts: numExperts,
    replicas: numReplicas,
    groups: numGroups,
    nodes: numNodes,
    gpus: numGpus,
  });
  if (numGpus % numNodes !== 0) {
    throw new EplbInputError("numNodes", numNodes, `must divide numGpus (${numGpus})`);
  }
  if (numReplicas % numGpus !== 0) {
    throw new EplbInputError("numGpus", numGpus, `must divide numReplicas (${numReplicas})`);
  }
  if (numReplicas < numExperts) {
    throw new EplbInputError(
      "numReplicas",
      numReplicas,
      `must be >= the number of experts (${numExperts}) so every expert has a slot`,
    );
  }
  const hierarchical = numGroups % numNodes === 0;
  // Only the hierarchical path looks at groups: on the global path the reference plans with one
  // group and one node, so it accepts any numGroups (vLLM's test_parameter_validation relies on it).
  if (hierarchical && numExperts % numGroups !== 0) {
    throw new EplbInputError(
      "numGroups",
      numGroups,
      `must divide the number of experts (${numExperts}) when numGroups % numNodes == 0 (hierarchical)`,
    );
  }
  return {
    numExperts,
    numReplicas,
    numGroups,
    numNodes,
    numGpus,
    slotsPerGpu: numReplicas / numGpus,
    gpusPerNode: numGpus / numNodes,
    slotsPerNode: numReplicas / numNodes,
    expertsPerGroup: numExperts / numGroups,
    hierarchical,
  };
}

/**
 * Where a plan may put replicas relative to their group's node: anywhere (`global`: the topology
 * is not hierarchical), every replica of a group on its group's node (`strict`), or one replica
 * of each expert there and the rest anywhere (`relaxed`). Settled here once, so policies,
 * rebalancing and evaluators agree on it.
 */
export type Locality = "global" | "strict" | "relaxed";

/**
 * The locality mode of a topology under the `relaxedHierarchy` option: `global` whenever the
 * topology is not hierarchical (the option then has nothing to relax).
 *
 * @param topology - the cluster shape
 * @param relaxedHierarchy - whether redundant replicas may leave their group's node
 * @returns the mode
 * @example
 * ```ts
 * localityOf(makeTopology(256, 288, 8, 4, 32), true); // "relaxed"
 * localityOf(makeTopology(4, 8, 3, 2, 4), true); // "global": 3 groups on 2 nodes is not hierarchical
 * ```
 */
export function localityOf(topology: Topology, relaxedHierarchy = false): Locality {
  if (!topology.hierarchical) return "global";
  return relaxedHierarchy ? "relaxed" : "strict";
}

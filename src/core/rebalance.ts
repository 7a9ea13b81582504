import { type LoadsInput, toLoadMatrix } from "./matrix.js";
import { type Placement, type ReferencePlacement, toReferencePlacement } from "./placement.js";
import { DEFAULT_POLICY, getPolicy } from "./policies/index.js";
import type { PolicyOptions } from "./policy.js";
import { makeTopology, type Topology } from "./topology.js";

/** Options of {@link rebalanceExperts}. */
export interface RebalanceOptions extends PolicyOptions {
  /** `"deepseek"` (exact parity with the reference) or another registered policy. */
  policy?: string;
}

/** The reference-shaped result plus typed views for further work (metrics, writers). */
export interface RebalanceResult extends ReferencePlacement {
  /** The same plan as flat typed arrays. */
  placement: Placement;
  /** The validated cluster shape the plan was made for. */
  topology: Topology;
  /** Name of the policy that made the plan. */
  policy: string;
}

/**
 * The drop-in for DeepSeek's `rebalance_experts(weight, num_replicas, num_groups, num_nodes,
 * num_gpus)`: validates the loads and shape, runs the chosen policy on every layer and returns
 * `phy2log[L][P]`, `log2phy[L][E][X]` (slots in replica order, `-1`-padded to the largest count)
 * and `logcnt[L][E]`.
 *
 * @example
 * ```ts
 * import { rebalanceExperts } from "eplb";
 * const { phy2log, logcnt } = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2);
 * // phy2log = [[1, 1, 0, 2, 3, 3]], logcnt = [[1, 2, 1, 2]]
 * ```
 */
export function rebalanceExperts(
  weight: LoadsInput,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  options: RebalanceOptions = {},
): RebalanceResult {
  const policyName = options.policy ?? DEFAULT_POLICY;
  const policy = getPolicy(policyName);
  const loads = toLoadMatrix(weight);
  const topology = makeTopology(loads.experts, numReplicas, numGroups, numNodes, numGpus);
  const placement = policy.plan(loads, topology, options);
  return { ...toReferencePlacement(placement), placement, topology, policy: policyName };
}

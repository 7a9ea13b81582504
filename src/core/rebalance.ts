import { firstGpuDuplicate, separateDuplicates } from "./blocks/distinct.js";
import type { TransferPlan } from "./evaluation/transfers.js";
import {
  type MigrationMetrics,
  type MigrationOptions,
  migratePlacement,
  type PreviousPlacement,
} from "./migration/index.js";
import { EplbInputError } from "./model/errors.js";
import { checkShapeLimits } from "./model/limits.js";
import { type LoadsInput, toLoadMatrix } from "./model/matrix.js";
import {
  type Placement,
  type ReferencePlacement,
  toReferencePlacement,
} from "./model/placement.js";
import { makeTopology, type Topology } from "./model/topology.js";
import type { BalancedOptions } from "./policies/balanced.js";
import { DEFAULT_POLICY, getPolicy } from "./policies/index.js";
import { checkOptionNames } from "./policies/options.js";
import type { PolicyOptions } from "./policies/policy.js";

/**
 * Options of {@link rebalanceExperts}: the common ones below, the policy's own
 * ({@link BalancedOptions}; the deepseek policy has none) and, with `previous`,
 * {@link MigrationOptions}. A field none of them reads is refused (a misspelt option would
 * otherwise be ignored); a policy added by `registerPolicy` declares its own in `Policy.options`.
 */
export interface RebalanceOptions extends PolicyOptions, BalancedOptions, MigrationOptions {
  /** `"deepseek"` (exact parity with the reference) or another registered policy. */
  policy?: string;
  /**
   * The placement the engine runs now (`phy2log`, `[layers][numReplicas]`, or a typed
   * {@link Placement}). When given, the result keeps experts in their current slots wherever
   * possible (see `docs/migration.md`), within `moveBudget`, `minGain` and `tolerance`.
   */
  previous?: PreviousPlacement;
  /**
   * No GPU may hold an expert twice (vllm-ascend cannot serve such a placement: see
   * `docs/engines.md`). Other policies' plans are repaired by {@link separateDuplicates}; the
   * `deepseek` policy's plan stays the reference's exactly, so one with a duplicate is refused.
   */
  distinctPerGpu?: boolean;
}

/** The reference-shaped result plus typed views for further work (metrics, writers). */
export interface RebalanceResult extends ReferencePlacement {
  /** The same plan as flat typed arrays. */
  placement: Placement;
  /** The validated cluster shape the plan was made for. */
  topology: Topology;
  /** Name of the policy that made the plan. */
  policy: string;
  /** With `options.previous`: the weight transfers from the previous placement to this one. */
  transfers?: TransferPlan;
  /** With `options.previous`: slots changed, transfers by kind, max GPU load before and after. */
  migration?: MigrationMetrics;
}

/**
 * The drop-in for DeepSeek's `rebalance_experts(weight, num_replicas, num_groups, num_nodes,
 * num_gpus)`: validates the loads and shape, runs the chosen policy on every layer and returns
 * `phy2log[L][P]`, `log2phy[L][E][X]` (slots in replica order, `-1`-padded to the largest count)
 * and `logcnt[L][E]`. With `options.previous` (the engine's current `phy2log`) it rebalances from
 * that placement instead, changing few slots, and adds `transfers` and `migration` figures.
 *
 * @throws {EplbInputError} for loads or a shape the policy cannot plan, an unknown policy or an
 * option no part of the planning reads (named with the known ones).
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
  checkOptionNames(options, policy);
  const loads = toLoadMatrix(weight);
  const topology = makeTopology(loads.experts, numReplicas, numGroups, numNodes, numGpus);
  checkShapeLimits({ layers: loads.layers, replicas: numReplicas });
  let placement = policy.plan(loads, topology, options);
  if (options.distinctPerGpu) {
    if (policyName === "deepseek") refuseDuplicate(placement, topology, "policy", policyName);
    else placement = separateDuplicates(loads, placement, topology);
  }
  if (options.previous !== undefined) {
    const m = migratePlacement(loads, options.previous, placement, topology, options);
    if (options.distinctPerGpu) refuseDuplicate(m.placement, topology, "previous", policyName);
    return {
      ...toReferencePlacement(m.placement),
      placement: m.placement,
      topology,
      policy: policyName,
      transfers: m.transfers,
      migration: m.metrics,
    };
  }
  return { ...toReferencePlacement(placement), placement, topology, policy: policyName };
}

/** Throws when a GPU of `placement` holds an expert twice, naming the layer, GPU and expert. */
function refuseDuplicate(
  placement: Placement,
  topology: Topology,
  source: "policy" | "previous",
  policy: string,
): void {
  const d = firstGpuDuplicate(placement, topology.numGpus);
  if (d === null) return;
  const where = `expert ${d.expert} twice on GPU ${d.gpu} of layer ${d.layer}`;
  const cannot = "which an engine that needs distinct experts per GPU (vllm-ascend) cannot serve";
  if (source === "policy") {
    throw new EplbInputError(
      "policy",
      policy,
      `puts ${where} (the reference's plan, kept exactly), ${cannot}: use the balanced policy (--policy balanced)`,
    );
  }
  throw new EplbInputError(
    "previous",
    where,
    `is kept when rebalancing from the previous placement, ${cannot}: plan without it`,
  );
}

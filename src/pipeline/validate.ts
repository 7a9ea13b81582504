// The validate stage: a simulation's configuration checked against its trace before any work
// starts, so that a sweep refuses a bad configuration before replaying the first.

import { checkShapeLimits } from "../core/model/limits.js";
import { makeTopology } from "../core/model/topology.js";
import { DEFAULT_POLICY, getPolicy } from "../core/policies/index.js";
import {
  DEFAULT_ESTIMATOR,
  type LoadTrace,
  resolveEstimatorSpec,
} from "../core/traces/estimators.js";
import type { PlainConfig } from "./sweep.js";

/**
 * Checks a simulation's configuration against the trace's shape, in this order: the cluster
 * shape (as `makeTopology`), the size limits, the policy name, the estimator and its parameters.
 * The interval against the trace's length is the caller's to check (the CLI words it as a flag).
 *
 * @param config the configuration (a sweep checks each of its grid)
 * @param trace the trace's dimensions
 * @throws EplbInputError naming the first parameter that is wrong, its value and the rule
 * @example
 * ```ts
 * const config = { numReplicas: 288, numGroups: 8, numNodes: 4, numGpus: 32, interval: 100, window: 100 };
 * checkSimulationConfig(config, { steps: 2000, layers: 58, experts: 256 }); // fine
 * checkSimulationConfig({ ...config, numReplicas: 224 }, { steps: 2000, layers: 58, experts: 256 });
 * // throws EplbInputError: numReplicas (224) must be >= the number of experts (256) so every expert has a slot
 * ```
 */
export function checkSimulationConfig(
  config: PlainConfig,
  trace: Pick<LoadTrace, "steps" | "layers" | "experts">,
): void {
  const c = config;
  makeTopology(trace.experts, c.numReplicas, c.numGroups, c.numNodes, c.numGpus);
  checkShapeLimits({ layers: trace.layers, replicas: c.numReplicas });
  getPolicy(c.policy ?? DEFAULT_POLICY);
  resolveEstimatorSpec({
    kind: c.estimator ?? DEFAULT_ESTIMATOR,
    window: c.window,
    halfLife: c.halfLife,
    k: c.k,
    slices: c.slices,
  });
}

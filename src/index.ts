/**
 * eplb: Expert-Parallelism Load Balancer for Mixture-of-Experts models. The main entry holds what a
 * user plans, checks and simulates with; it is the pure, isomorphic core (no Node imports).
 *
 * - `eplb/blocks`: the building blocks advanced users compose (per-layer kernels, workspaces,
 *   packing, replication, counts, per-engine metrics, migration internals).
 * - `eplb/report`: the HTML/SVG report toolkit.
 * - `eplb/node`: file formats (readers, writers), Node only.
 *
 * See `docs/architecture.md` for where each lives.
 */

export {
  type EngineBalance,
  engineBalance,
} from "./core/engine-metrics.js";
export { EplbInputError } from "./core/errors.js";
export {
  createEstimator,
  DEFAULT_ESTIMATOR,
  ESTIMATOR_KINDS,
  type EstimatorKind,
  type EstimatorSpec,
  estimateLoads,
  type LoadEstimator,
  type LoadTrace,
} from "./core/estimators.js";
export { MAX_SHAPE } from "./core/limits.js";
export { type LoadMatrix, type LoadsInput, matrixToArrays, toLoadMatrix } from "./core/matrix.js";
export {
  type BalanceSummary,
  evaluatePlacement,
  gpuLoads,
  lowerBounds,
  nodeLoads,
  type PlacementMetrics,
  summarizeBalance,
} from "./core/metrics.js";
export {
  type Migration,
  type MigrationMetrics,
  type MigrationOptions,
  migratePlacement,
  type PreviousPlacement,
  toPreviousPlacement,
} from "./core/migration.js";
export {
  createPlacement,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  type ReferencePlacement,
  toReferencePlacement,
} from "./core/placement.js";
export { type BalancedOptions, planBalanced } from "./core/policies/balanced.js";
export { type DeepseekOptions, planDeepseek } from "./core/policies/deepseek.js";
export { DEFAULT_POLICY, getPolicy, policyNames, registerPolicy } from "./core/policies/index.js";
export type { Policy, PolicyOptions } from "./core/policy.js";
export { lognormalLoads, Random, zipfLoads } from "./core/random.js";
export { type RebalanceOptions, type RebalanceResult, rebalanceExperts } from "./core/rebalance.js";
export {
  type SimulationConfig,
  type SimulationResult,
  type StrategyName,
  type StrategyResult,
  simulate,
  type TraceSource,
  traceSource,
} from "./core/simulate.js";
export { keepGpuSlots, preserveGpuSlots } from "./core/slots.js";
export {
  type SynthOptions,
  type SynthTrace,
  synthesizeTrace,
  synthTrace,
} from "./core/synth.js";
export { makeTopology, type Topology } from "./core/topology.js";
export {
  planTransfers,
  type Transfer,
  type TransferCounts,
  type TransferKind,
  type TransferPlan,
  transferList,
} from "./core/transfers.js";

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

export { lognormalLoads, Random, zipfLoads } from "./core/blocks/random.js";
export { type CostModel, makeCostModel } from "./core/cost/model.js";
export { scheduleTransfers, type TransferSchedule } from "./core/cost/schedule.js";
export { type EngineBalance, engineBalance } from "./core/evaluation/engine-metrics.js";
export {
  type BalanceSummary,
  evaluatePlacement,
  gpuLoads,
  lowerBounds,
  nodeLoads,
  type PlacementMetrics,
  summarizeBalance,
} from "./core/evaluation/metrics.js";
export {
  planTransfers,
  type Transfer,
  type TransferCounts,
  type TransferKind,
  type TransferPlan,
  transferList,
} from "./core/evaluation/transfers.js";
export {
  type Migration,
  type MigrationMetrics,
  type MigrationOptions,
  migratePlacement,
  type PreviousPlacement,
  toPreviousPlacement,
} from "./core/migration/index.js";
export { keepGpuSlots, preserveGpuSlots } from "./core/migration/slots.js";
export { EplbInputError } from "./core/model/errors.js";
export { MAX_SHAPE } from "./core/model/limits.js";
export {
  type LoadMatrix,
  type LoadsInput,
  matrixToArrays,
  toLoadMatrix,
} from "./core/model/matrix.js";
export {
  createPlacement,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  type ReferencePlacement,
  toReferencePlacement,
} from "./core/model/placement.js";
export { makeTopology, type Topology } from "./core/model/topology.js";
export { type BalancedOptions, planBalanced } from "./core/policies/balanced.js";
export { type DeepseekOptions, planDeepseek } from "./core/policies/deepseek.js";
export { DEFAULT_POLICY, getPolicy, policyNames, registerPolicy } from "./core/policies/index.js";
export type { Policy, PolicyOptions } from "./core/policies/policy.js";
export { type RebalanceOptions, type RebalanceResult, rebalanceExperts } from "./core/rebalance.js";
export { type DispatchStats, dispatchStats } from "./core/routing/dispatch.js";
export { makeRouting, type Routing } from "./core/routing/routing.js";
export {
  createEstimator,
  DEFAULT_ESTIMATOR,
  ESTIMATOR_KINDS,
  type EstimatorKind,
  type EstimatorSpec,
  estimateLoads,
  type LoadEstimator,
  type LoadTrace,
} from "./core/traces/estimators.js";
export {
  type SimulationConfig,
  type SimulationResult,
  type StrategyName,
  type StrategyResult,
  simulate,
  type TraceSource,
  traceSource,
} from "./core/traces/simulate.js";
export {
  type SynthOptions,
  type SynthTrace,
  synthesizeTrace,
  synthTrace,
} from "./core/traces/synth.js";

/**
 * eplb/blocks: the building blocks the policies are made of, for advanced users who compose their
 * own policy or drive one layer at a time. Everything here is pure (no Node imports), works on flat
 * row-major typed arrays and reuses the buffers of a `*Workspace` allocated once per topology.
 *
 * The main entry `eplb` holds the planning, evaluation and simulation calls most users need; this
 * subpath is more likely to change between minor versions (see CHANGELOG.md).
 *
 * @example
 * ```ts
 * import { createPlacement, makeTopology, toLoadMatrix } from "eplb";
 * import { BalancedWorkspace, layerView, planBalancedLayer } from "eplb/blocks";
 * const t = makeTopology(4, 6, 1, 1, 2);
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const out = createPlacement(1, 6, 4);
 * planBalancedLayer(layerView(loads, out, 0), new BalancedWorkspace(t)); // 50
 * ```
 */

export {
  AssignmentWorkspace,
  RelabelWorkspace,
  relabelLayer,
  solveAssignment,
} from "./core/blocks/assignment.js";
export {
  type CountSearchOptions,
  CountsWorkspace,
  estimateMaxLoad,
  homeAwareCounts,
  searchReplicaCounts,
} from "./core/blocks/counts/index.js";
export {
  firstGpuDuplicate,
  type GpuDuplicate,
  separateDuplicates,
} from "./core/blocks/distinct.js";
export {
  EXACT_LIMITS,
  type ExactOptions,
  type ExactSolution,
  solveExact,
} from "./core/blocks/exact.js";
export {
  type LayerPlanner,
  type LayerRange,
  type LayerView,
  layerView,
  planLayers,
} from "./core/blocks/layers.js";
export {
  EXACT_GROUP_PARTITIONS,
  type GroupPackingShape,
  GroupPackingWorkspace,
  groupPartitionCount,
  offNodeShare,
  packGroupsToNodes,
} from "./core/blocks/locality.js";
export { OrderWorkspace, orderDescending } from "./core/blocks/order.js";
export { greedyPacking, PackingWorkspace } from "./core/blocks/packing.js";
export { excessCopies, refineScope, repairDuplicates } from "./core/blocks/refine.js";
export {
  greedyReplication,
  minMaxReplicaLoad,
  ReplicationWorkspace,
  waterFillCounts,
} from "./core/blocks/replication.js";
export {
  packScope,
  recomputeScopeLoads,
  replicaCap,
  ScopeWorkspace,
  scopeLowerBound,
  scopeMaxLoad,
} from "./core/blocks/scope.js";
export { type GateDecision, gateRebalance } from "./core/cost/gate.js";
export { CostLedger, type StrategyCost } from "./core/cost/ledger.js";
export { type CostModelParams, copyMs } from "./core/cost/model.js";
export {
  expertBytesOf,
  expertLoadUsOf,
  HARDWARE_PRESETS,
  type HardwarePreset,
  hardwarePreset,
  MODEL_PRESETS,
  MOE_GEMM_EFFICIENCY,
  type ModelPreset,
  modelPreset,
  tokenUsOf,
  type WeightFormat,
} from "./core/cost/presets.js";
export {
  contiguousLayerMoeUs,
  distinctSlotMask,
  layerMoeUs,
  layerTransfers,
  rebalanceMs,
  stepMoeMs,
  transferPlanMs,
} from "./core/cost/price.js";
export type { ScheduleOptions } from "./core/cost/schedule.js";
export {
  type SglangBalance,
  sglangBalance,
  sglangPassBalance,
  type TrtllmBalance,
  trtllmBalance,
  type VllmAscendBalance,
  type VllmBalance,
  vllmAscendBalance,
  vllmBalance,
} from "./core/evaluation/engine-metrics.js";
export { type LoadedLayer, layerMaxGpuLoad } from "./core/evaluation/layer-load.js";
export {
  contiguousGpuLoads,
  duplicateGpuCount,
  requirePlacementFits,
} from "./core/evaluation/metrics.js";
export type { TransferCounts } from "./core/evaluation/transfers.js";
export {
  type GpuTransferCounts,
  gpuTransferCounts,
  planLayerTransfers,
  TRANSFER_KINDS,
  TransferWorkspace,
} from "./core/evaluation/transfers.js";
export {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  type LayerMigration,
  type LayerOutcome,
  localityViolation,
  type MigrationSettings,
  MigrationWorkspace,
  migrateLayer,
  resolveMigrationSettings,
  SMOOTHING,
  smoothMaxGpuLoad,
} from "./core/migration/index.js";
export { keepGpuSlots, preserveGpuSlots } from "./core/migration/slots.js";
export {
  checkShapeLimits,
  MAX_LOAD_TOTAL,
  type ShapeNames,
  shapeLimitsText,
} from "./core/model/limits.js";
export { maxReplicaCount } from "./core/model/placement.js";
export { type ClusterShape, type Locality, localityOf } from "./core/model/topology.js";
export {
  BalancedWorkspace,
  balancedLayerPlanner,
  balancedOptions,
  balancedPolicy,
  DEFAULT_EPSILON,
  type LayerSource,
  planBalancedLayer,
} from "./core/policies/balanced.js";
export {
  DeepseekWorkspace,
  deepseekLayerPlanner,
  deepseekPolicy,
  type HierarchyShape,
  planHierarchicalLayer,
  referenceShape,
} from "./core/policies/deepseek.js";
export {
  DEFAULT_LOCALITY_TOLERANCE,
  localityTolerance,
  localizePlacement,
} from "./core/policies/locality.js";
export {
  DEFAULT_LOCALITY_GAIN,
  localityGain,
  localizeFromPrevious,
  type PricedLocalityOptions,
  remigrationMetrics,
} from "./core/policies/locality-moves.js";
export {
  type LocalityLayer,
  LocalitySearch,
  type MoveGate,
} from "./core/policies/locality-search.js";
export {
  type CoActivationGraph,
  coActivationGraph,
  type LayerCoActivation,
  layerCoActivation,
} from "./core/routing/coactivation.js";
export {
  createDispatchWorkspace,
  type DispatchWorkspace,
  type LayerDispatch,
  layerRemoteNodes,
  maskWords,
  nodeMasks,
  tokenRemoteNodes,
} from "./core/routing/dispatch.js";
export { DEFAULT_WINDOW_TOKENS, windowRouting } from "./core/routing/window.js";
export {
  DEFAULT_HALF_LIFE_FRACTION,
  ESTIMATOR_DESCRIPTIONS,
  resolveEstimatorSpec,
  type TraceData,
} from "./core/traces/estimators.js";
export {
  type LocalityPlanning,
  slotSharesOf,
  stepBalancedness,
} from "./core/traces/simulate.js";
export { DRIFT_SEGMENT, resolveSynthOptions } from "./core/traces/synth.js";
export {
  resolveSynthRoutingOptions,
  type SynthRoutingSource,
  synthesizeRouting,
} from "./core/traces/synth-routing.js";

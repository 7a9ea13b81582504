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
 * import { makeTopology } from "eplb";
 * import { BalancedWorkspace, planBalancedLayer } from "eplb/blocks";
 * const t = makeTopology(4, 6, 1, 1, 2);
 * const phy = new Int32Array(6), rank = new Int32Array(6), cnt = new Int32Array(4);
 * planBalancedLayer(new Float64Array([10, 40, 20, 30]), 0, phy, rank, 0, cnt, 0, new BalancedWorkspace(t)); // 50
 * ```
 */

export {
  AssignmentWorkspace,
  RelabelWorkspace,
  relabelLayer,
  solveAssignment,
} from "./core/assignment.js";
export {
  type CountSearchOptions,
  CountsWorkspace,
  estimateMaxLoad,
  homeAwareCounts,
  searchReplicaCounts,
} from "./core/counts.js";
export { firstGpuDuplicate, type GpuDuplicate, separateDuplicates } from "./core/distinct.js";
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
} from "./core/engine-metrics.js";
export {
  DEFAULT_HALF_LIFE_FRACTION,
  ESTIMATOR_DESCRIPTIONS,
  resolveEstimatorSpec,
  type TraceData,
} from "./core/estimators.js";
export { EXACT_LIMITS, type ExactOptions, type ExactSolution, solveExact } from "./core/exact.js";
export {
  checkShapeLimits,
  MAX_LOAD_TOTAL,
  type ShapeNames,
  shapeLimitsText,
} from "./core/limits.js";
export {
  EXACT_GROUP_PARTITIONS,
  type GroupPackingShape,
  GroupPackingWorkspace,
  groupPartitionCount,
  offNodeShare,
  packGroupsToNodes,
} from "./core/locality.js";
export { contiguousGpuLoads, duplicateGpuCount, requirePlacementFits } from "./core/metrics.js";
export {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  type LayerMigration,
  type LayerOutcome,
  layerMaxGpuLoad,
  localityViolation,
  type MigrationSettings,
  MigrationWorkspace,
  migrateLayer,
  resolveMigrationSettings,
  SMOOTHING,
  smoothMaxGpuLoad,
} from "./core/migration.js";
export { OrderWorkspace, orderDescending } from "./core/order.js";
export { greedyPacking, PackingWorkspace } from "./core/packing.js";
export { maxReplicaCount } from "./core/placement.js";
export {
  BalancedWorkspace,
  balancedOptions,
  balancedPolicy,
  DEFAULT_EPSILON,
  type LayerSource,
  planBalancedLayer,
} from "./core/policies/balanced.js";
export {
  DeepseekWorkspace,
  deepseekPolicy,
  type HierarchyShape,
  planHierarchicalLayer,
  referenceShape,
} from "./core/policies/deepseek.js";
export { excessCopies, refineScope, repairDuplicates } from "./core/refine.js";
export {
  greedyReplication,
  minMaxReplicaLoad,
  ReplicationWorkspace,
  waterFillCounts,
} from "./core/replication.js";
export {
  packScope,
  recomputeScopeLoads,
  replicaCap,
  ScopeWorkspace,
  scopeLowerBound,
  scopeMaxLoad,
} from "./core/scope.js";
export { slotSharesOf, stepBalancedness } from "./core/simulate.js";
export { DRIFT_SEGMENT, resolveSynthOptions } from "./core/synth.js";
export {
  type GpuTransferCounts,
  gpuTransferCounts,
  planLayerTransfers,
  TRANSFER_KINDS,
  TransferWorkspace,
} from "./core/transfers.js";

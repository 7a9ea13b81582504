/**
 * eplb: Expert-Parallelism Load Balancer for Mixture-of-Experts models. The pure, isomorphic core
 * (no Node imports); file formats and the CLI live in `eplb/node`.
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
export { lognormalLoads, Random, zipfLoads } from "./core/blocks/random.js";
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
export {
  type EngineBalance,
  engineBalance,
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
  type BalanceSummary,
  contiguousGpuLoads,
  duplicateGpuCount,
  evaluatePlacement,
  gpuLoads,
  lowerBounds,
  nodeLoads,
  type PlacementMetrics,
  requirePlacementFits,
  summarizeBalance,
} from "./core/evaluation/metrics.js";
export {
  type GpuTransferCounts,
  gpuTransferCounts,
  planLayerTransfers,
  planTransfers,
  TRANSFER_KINDS,
  type Transfer,
  type TransferCounts,
  type TransferKind,
  type TransferPlan,
  TransferWorkspace,
  transferList,
} from "./core/evaluation/transfers.js";
export {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  type LayerMigration,
  type LayerOutcome,
  localityViolation,
  type Migration,
  type MigrationMetrics,
  type MigrationOptions,
  type MigrationSettings,
  MigrationWorkspace,
  migrateLayer,
  migratePlacement,
  type PreviousPlacement,
  resolveMigrationSettings,
  SMOOTHING,
  smoothMaxGpuLoad,
  toPreviousPlacement,
} from "./core/migration.js";
export { EplbInputError } from "./core/model/errors.js";
export {
  checkShapeLimits,
  MAX_LOAD_TOTAL,
  MAX_SHAPE,
  type ShapeNames,
  shapeLimitsText,
} from "./core/model/limits.js";
export {
  type LoadMatrix,
  type LoadsInput,
  matrixToArrays,
  toLoadMatrix,
} from "./core/model/matrix.js";
export {
  createPlacement,
  maxReplicaCount,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  type ReferencePlacement,
  toReferencePlacement,
} from "./core/model/placement.js";
export {
  type ClusterShape,
  type Locality,
  localityOf,
  makeTopology,
  type Topology,
} from "./core/model/topology.js";
export {
  type BalancedOptions,
  BalancedWorkspace,
  balancedLayerPlanner,
  balancedOptions,
  balancedPolicy,
  DEFAULT_EPSILON,
  type LayerSource,
  planBalanced,
  planBalancedLayer,
} from "./core/policies/balanced.js";
export {
  DeepseekWorkspace,
  deepseekLayerPlanner,
  deepseekPolicy,
  type HierarchyShape,
  planDeepseek,
  planHierarchicalLayer,
  referenceShape,
} from "./core/policies/deepseek.js";
export { DEFAULT_POLICY, getPolicy, policyNames, registerPolicy } from "./core/policies/index.js";
export type { Policy, PolicyOptions } from "./core/policies/policy.js";
export { type RebalanceOptions, type RebalanceResult, rebalanceExperts } from "./core/rebalance.js";
export { keepGpuSlots, preserveGpuSlots } from "./core/slots.js";
export {
  createEstimator,
  DEFAULT_ESTIMATOR,
  DEFAULT_HALF_LIFE_FRACTION,
  ESTIMATOR_DESCRIPTIONS,
  ESTIMATOR_KINDS,
  type EstimatorKind,
  type EstimatorSpec,
  estimateLoads,
  type LoadEstimator,
  type LoadTrace,
  resolveEstimatorSpec,
  type TraceData,
} from "./core/traces/estimators.js";
export {
  type SimulationConfig,
  type SimulationResult,
  type StrategyName,
  type StrategyResult,
  simulate,
  slotSharesOf,
  stepBalancedness,
  type TraceSource,
  traceSource,
} from "./core/traces/simulate.js";
export {
  DRIFT_SEGMENT,
  resolveSynthOptions,
  type SynthOptions,
  type SynthTrace,
  synthesizeTrace,
  synthTrace,
} from "./core/traces/synth.js";
export {
  AFTER_COLOR,
  BEFORE_COLOR,
  expertColor,
  HEAT_COLORS,
  HEAT_EDGES,
  heatBin,
  textColorOn,
} from "./report/colors.js";
export { type GpuBarsOptions, svgGpuBars } from "./report/gpu-bars.js";
export { type HeatmapOptions, svgHeatmap } from "./report/heatmap.js";
export {
  defaultSections,
  figure,
  type HtmlReportOptions,
  htmlReport,
  type ReportSection,
} from "./report/html.js";
export { type LayerBalanceOptions, svgLayerBalance } from "./report/layer-balance.js";
export { migrationSection, migrationSections } from "./report/migration.js";
export {
  type BeforeMetrics,
  buildReportModel,
  type DetailLayer,
  type MigrationView,
  migrationView,
  pickDetailLayers,
  type ReportInput,
  type ReportModel,
} from "./report/model.js";
export { type PlacementGridOptions, svgPlacementGrid } from "./report/placement-grid.js";
export { type SweepPoint, simulationSection, sweepSection } from "./report/simulation.js";
export {
  type BarChartOptions,
  type BarSeries,
  escapeXml,
  formatNumber,
  type LegendItem,
  type LineChartOptions,
  type LineSeries,
  niceTicks,
  type RefLine,
  svgBarChart,
  svgLegend,
  svgLineChart,
} from "./report/svg.js";

import type { CostModel } from "../core/cost/model.js";
import { scheduleTransfers, type TransferSchedule } from "../core/cost/schedule.js";
import {
  type BalanceSummary,
  contiguousGpuLoads,
  evaluatePlacement,
  gpuLoads,
  lowerBounds,
  nodeLoads,
  type PlacementMetrics,
  requirePlacementFits,
  summarizeBalance,
} from "../core/evaluation/metrics.js";
import {
  type GpuTransferCounts,
  gpuTransferCounts,
  planTransfers,
  type TransferCounts,
  type TransferPlan,
} from "../core/evaluation/transfers.js";
import { EplbInputError, requireInteger } from "../core/model/errors.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import { makeTopology } from "../core/model/topology.js";
import type { LocalityMetrics } from "../core/routing/summary.js";

/** What a report is made from: loads, a placement and the cluster it is laid out on. */
export interface ReportInput {
  loads: LoadMatrix;
  placement: Placement;
  numGpus: number;
  /** Default 1. */
  numNodes?: number;
  /** Expert groups, used to colour the grid and mark group borders (default 1). */
  numGroups?: number;
  /** Policy that made the plan, or a note such as `"from plan.json"`. */
  policy?: string;
  /** `"hierarchical"` or `"global"`, when known. */
  mode?: string;
  /** Planning time in milliseconds, when the report planned it. */
  timeMs?: number;
  /** Page heading (default "EPLB report"). */
  title?: string;
  /** Where the loads and the placement came from (file names), shown under the heading. */
  sources?: { loads?: string; placement?: string; previous?: string };
  /** Layers for the GPU bars and placement grids; default: picked by {@link pickDetailLayers}. */
  detailLayers?: number[];
  /** Footer credit, e.g. "eplb 0.1.0". */
  generator?: string;
  /**
   * The placement the engine runs now, when `placement` is a rebalance from it: the report then
   * shows what moves (slots changed, transfers by kind) and what it buys.
   */
  previous?: Placement;
  /** With `previous`: prices the rebalance's transfers, and the report shows their schedule. */
  cost?: CostModel;
  /** Dispatch figures under a routing (`eplb report --routing`): the report gains a section. */
  locality?: LocalityMetrics;
}

/** A layer shown in detail and why it was picked. */
export interface DetailLayer {
  layer: number;
  reason: string;
}

/** Figures of the placement before EPLB (experts in order, one slot each). */
export interface BeforeMetrics extends BalanceSummary {
  /** Per layer: max GPU load / the plan's lower bound. */
  maxOverLowerBoundPerLayer: number[];
  maxOverLowerBound: number;
  worstMaxOverLowerBound: number;
  nodeBalancedness: number;
}

/** The move from a previous placement to the reported one, under the report's loads. */
export interface MigrationView {
  previous: Placement;
  /** Per layer: slots whose expert changed (each one a weight transfer). */
  changedPerLayer: number[];
  slotsChanged: number;
  /** Transfers by kind: from a slot on the same GPU, another GPU of the node, another node. */
  transfers: TransferCounts;
  /** Transfers per GPU and kind, received and sent, summed over layers. */
  perGpu: GpuTransferCounts;
  /** The previous placement's balance under these loads. */
  previousBalance: BalanceSummary;
  /** With a cost model: the transfers and their round schedule, priced. */
  schedule?: { plan: TransferPlan; schedule: TransferSchedule };
}

/** Everything the report draws, computed once from a {@link ReportInput}. */
export interface ReportModel {
  title: string;
  sources: { loads?: string; placement?: string; previous?: string };
  generator?: string;
  loads: LoadMatrix;
  placement: Placement;
  layers: number;
  numExperts: number;
  numReplicas: number;
  numGpus: number;
  numNodes: number;
  numGroups: number;
  slotsPerGpu: number;
  gpusPerNode: number;
  policy?: string;
  mode?: string;
  timeMs?: number;
  /** GPU loads without EPLB, `[layers][numGpus]` row-major. */
  beforeGpuLoads: Float64Array;
  /** GPU loads under the placement, `[layers][numGpus]` row-major. */
  afterGpuLoads: Float64Array;
  before: BeforeMetrics;
  after: PlacementMetrics;
  /** (layer, GPU) pairs of each layer where a GPU holds two replicas of one expert. */
  duplicatesPerLayer: number[];
  detailLayers: DetailLayer[];
  /** Present when the input had a previous placement. */
  migration?: MigrationView;
  /** Present when the input had dispatch figures (a routing). */
  locality?: LocalityMetrics;
}

/**
 * Picks up to three layers worth a close look: the worst after EPLB (what is left to gain), the
 * worst before (where EPLB matters most) and a median layer after (the typical case).
 *
 * @example
 * ```ts
 * pickDetailLayers([0.5, 0.4, 0.7], [0.95, 0.9, 0.99]);
 * // [{ layer: 1, reason: "worst after EPLB" }, { layer: 0, reason: "median after EPLB" }]
 * ```
 */
export function pickDetailLayers(
  beforePerLayer: ReadonlyArray<number>,
  afterPerLayer: ReadonlyArray<number>,
): DetailLayer[] {
  const out: DetailLayer[] = [];
  const add = (layer: number, reason: string) => {
    if (layer >= 0 && !out.some((d) => d.layer === layer)) out.push({ layer, reason });
  };
  const argmin = (v: ReadonlyArray<number>) => {
    let best = -1;
    for (let i = 0; i < v.length; i++) if (best < 0 || v[i] < v[best]) best = i;
    return best;
  };
  add(argmin(afterPerLayer), "worst after EPLB");
  add(argmin(beforePerLayer), "worst before EPLB");
  const order = afterPerLayer.map((_, i) => i).sort((a, b) => afterPerLayer[a] - afterPerLayer[b]);
  if (order.length > 0) add(order[Math.floor(order.length / 2)], "median after EPLB");
  return out;
}

/**
 * Computes every figure of a report: GPU loads and balance before (contiguous experts, one slot
 * each, as `eplb plan` reports) and after, the lower bound, duplicates per layer, node balance,
 * and the layers to show in detail. Rejects a placement whose shape does not match the loads or
 * the cluster.
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix(JSON.parse(readFileSync("examples/loads.json", "utf8")).weight);
 * const { placement } = rebalanceExperts(loads, 16, 4, 2, 8);
 * const model = buildReportModel({ loads, placement, numGpus: 8, numNodes: 2, numGroups: 4 });
 * model.after.balancedness; // 0.81... (2 slots per GPU leave little room)
 * ```
 */
export function buildReportModel(input: ReportInput): ReportModel {
  const { loads, placement } = input;
  const numGpus = requireInteger("numGpus", input.numGpus, 1);
  const numNodes = requireInteger("numNodes", input.numNodes ?? 1, 1);
  const numGroups = requireInteger("numGroups", input.numGroups ?? 1, 1);
  requirePlacementFits(loads, placement, { numGpus, numNodes });
  // As in makeTopology: groups matter (and must divide the experts) only on the hierarchical path.
  if (numGroups % numNodes === 0 && loads.experts % numGroups !== 0) {
    throw new EplbInputError(
      "numGroups",
      numGroups,
      `must divide the number of experts (${loads.experts}) when numGroups % numNodes == 0 (hierarchical)`,
    );
  }
  const L = loads.layers;
  const P = placement.numReplicas;
  const slotsPerGpu = P / numGpus;
  const after = evaluatePlacement(loads, placement, { numGpus, numNodes });
  const beforeGpuLoads = contiguousGpuLoads(loads, numGpus);
  const beforeSummary = summarizeBalance(beforeGpuLoads, L, numGpus);
  const bounds = lowerBounds(loads, { numReplicas: P, numGpus });
  const ratio: number[] = new Array(L);
  let sum = 0;
  let worst = 0;
  for (let l = 0; l < L; l++) {
    ratio[l] = bounds[l] > 0 ? beforeSummary.maxGpuLoad[l] / bounds[l] : 1;
    sum += ratio[l];
    if (ratio[l] > worst) worst = ratio[l];
  }
  const before: BeforeMetrics = {
    ...beforeSummary,
    maxOverLowerBoundPerLayer: ratio,
    maxOverLowerBound: sum / L,
    worstMaxOverLowerBound: worst,
    nodeBalancedness: summarizeBalance(nodeLoads(beforeGpuLoads, L, numGpus, numNodes), L, numNodes)
      .balancedness,
  };
  const afterGpuLoads = gpuLoads(loads, placement, { numGpus });
  const duplicatesPerLayer = countDuplicatesPerLayer(placement, numGpus);
  let detailLayers: DetailLayer[];
  if (input.detailLayers && input.detailLayers.length > 0) {
    detailLayers = [];
    for (const layer of input.detailLayers) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= L) {
        throw new EplbInputError("detailLayers", layer, `must be a layer index in 0..${L - 1}`);
      }
      if (!detailLayers.some((d) => d.layer === layer))
        detailLayers.push({ layer, reason: "chosen" });
    }
  } else {
    detailLayers = pickDetailLayers(beforeSummary.balancednessPerLayer, after.balancednessPerLayer);
  }
  const migration = input.previous
    ? migrationView(loads, input.previous, placement, numGpus, numNodes, numGroups, input.cost)
    : undefined;
  return {
    title: input.title ?? "EPLB report",
    sources: input.sources ?? {},
    generator: input.generator,
    loads,
    placement,
    layers: L,
    numExperts: loads.experts,
    numReplicas: P,
    numGpus,
    numNodes,
    numGroups,
    slotsPerGpu,
    gpusPerNode: numGpus / numNodes,
    policy: input.policy,
    mode: input.mode,
    timeMs: input.timeMs,
    beforeGpuLoads,
    afterGpuLoads,
    before,
    after,
    duplicatesPerLayer,
    detailLayers,
    migration,
    ...(input.locality ? { locality: input.locality } : {}),
  };
}

/**
 * What a rebalance from `previous` to `placement` changes and what it buys under `loads`: slots
 * changed per layer, transfers by kind (the plan `eplb plan --transfers` writes), and the previous
 * placement's balance on the same loads.
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4);
 * const next = placementFromPhy2log([[1, 0, 3, 1, 2, 3]], 4);
 * const v = migrationView(loads, previous, next, 2, 2, 1); // 2 GPUs, one per node
 * v.changedPerLayer; // [4]
 * v.transfers; // { local: 2, intraNode: 0, interNode: 2 }
 * v.previousBalance.balancedness; // 1: GPU loads 50 and 50
 * ```
 */
export function migrationView(
  loads: LoadMatrix,
  previous: Placement,
  placement: Placement,
  numGpus: number,
  numNodes: number,
  numGroups: number,
  cost?: CostModel,
): MigrationView {
  requirePlacementFits(loads, previous, { numGpus, numNodes });
  if (previous.numReplicas !== placement.numReplicas) {
    throw new EplbInputError(
      "previous.numReplicas",
      previous.numReplicas,
      `must equal the placement's slots per layer (${placement.numReplicas})`,
    );
  }
  const L = loads.layers;
  const P = placement.numReplicas;
  const topology = makeTopology(loads.experts, P, numGroups, numNodes, numGpus);
  // Every changed slot gets exactly one transfer, so the plan's layer offsets count them.
  const plan = planTransfers(previous, placement, topology);
  const changedPerLayer: number[] = new Array(L);
  for (let l = 0; l < L; l++) changedPerLayer[l] = plan.layerOffsets[l + 1] - plan.layerOffsets[l];
  return {
    previous,
    changedPerLayer,
    slotsChanged: plan.count,
    transfers: { local: plan.local, intraNode: plan.intraNode, interNode: plan.interNode },
    perGpu: gpuTransferCounts(plan, topology),
    previousBalance: summarizeBalance(gpuLoads(loads, previous, { numGpus }), L, numGpus),
    ...(cost ? { schedule: { plan, schedule: scheduleTransfers(plan, topology, cost) } } : {}),
  };
}

function countDuplicatesPerLayer(placement: Placement, numGpus: number): number[] {
  const { layers, numReplicas: P, numExperts: E } = placement;
  const S = P / numGpus;
  const stampOf = new Int32Array(E).fill(-1);
  const out: number[] = new Array(layers).fill(0);
  for (let l = 0; l < layers; l++) {
    stampOf.fill(-1);
    for (let g = 0; g < numGpus; g++) {
      let dup = false;
      for (let j = 0; j < S; j++) {
        const e = placement.phy2log[l * P + g * S + j];
        if (e < 0) continue;
        if (stampOf[e] === g) dup = true;
        stampOf[e] = g;
      }
      if (dup) out[l]++;
    }
  }
  return out;
}

// The evaluate stage of a pipeline: a placement's quality under loads, in every engine's
// definition, as `eplb eval` reports it.
import {
  type EngineBalance,
  engineBalance,
  sglangBalance,
  sglangPassBalance,
} from "../core/evaluation/engine-metrics.js";
import {
  contiguousGpuLoads,
  evaluatePlacement,
  gpuLoads,
  nodeLoads,
  type PlacementMetrics,
  requirePlacementFits,
  summarizeBalance,
} from "../core/evaluation/metrics.js";
import { EplbInputError } from "../core/model/errors.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import type { LocalityMetrics } from "../core/routing/summary.js";
import type { Float64Trace } from "../io/interpret.js";
import { describeLoadSource, type LoadSource } from "../io/sources.js";
import type { HierarchyMetrics } from "./locality.js";

/** What `eplb eval --json` writes: a placement's quality under given loads. */
export interface EvalReport {
  layers: number;
  experts: number;
  replicas: number;
  gpus: number;
  nodes: number;
  /** The reference's figures: balancedness (mean/max), lower bound, duplicates, node balance. */
  metrics: PlacementMetrics;
  /** Balance as each engine computes it (vLLM, SGLang, TensorRT-LLM, vllm-ascend). */
  engines: EngineBalance;
  /** Per node: its share of the total load over all layers (sums to 1). */
  nodeShare: number[];
  /** Per layer and node: the node's load, `[layers][nodes]`. */
  nodeLoads: number[][];
  /** Without EPLB (experts in order, one slot each, on the same GPUs), for comparison. */
  withoutEplb: { balancedness: number; worstBalancedness: number; engines: EngineBalance };
  /**
   * When the loads have forward passes (SGLang per_pass / per_token dumps): SGLang's
   * balancedness computed per pass and averaged over the passes, as SGLang's recorder does.
   */
  sglangPerPass?: SglangPerPass;
  /** Whose definition each figure follows, by JSON path. */
  definitions: Record<string, string>;
  /** What the loads were read from (with the CLI). */
  loads?: { description: string; files: number; kinds: string[]; passes?: number };
  /**
   * With `--groups` on a hierarchical shape whose placement keeps every group on one node: the
   * hierarchy's own cost, the placement's loss within it, and what `--relaxed` would plan.
   */
  hierarchy?: HierarchyMetrics;
  /** With `--routing`: the placement's dispatch figures (docs/locality.md). */
  locality?: LocalityMetrics;
}

/** SGLang's per-pass balancedness of a placement, beside what SGLang logged while recording. */
export interface SglangPerPass {
  passes: number;
  /** The evaluated placement: each pass's loads spread over the replicas evenly, then SGLang's formula. */
  placement: number;
  /** The same GPUs without EPLB (experts in order, one slot each). */
  withoutEplb: number;
  /**
   * What SGLang logged for these passes (`current_pass_balancedness`, averaged): its recorded
   * physical counts under the map it ran, on the same GPU count. Absent when the dumps' maps
   * differ or their slots do not split over the GPUs.
   */
  recorded?: number;
}

/** Options of {@link evaluateForEngines}. */
export interface EvalOptions {
  /** Logical loads per forward pass; their sum should be `loads`. */
  readonly passes?: Float64Trace;
  /** SGLang's recorded physical counts per pass `[passes][layers][slots]`. */
  readonly recorded?: { readonly slots: number; readonly physical: Float64Array };
}

/** Whose definition each figure of an {@link EvalReport} follows. */
export const EVAL_DEFINITIONS: Record<string, string> = {
  "metrics.balancedness":
    "DeepSeek EPLB reference: mean / max GPU load per layer, averaged over layers, on the summed loads",
  "metrics.maxOverLowerBound": "eplb: max GPU load / the best any placement of these slots can do",
  "metrics.duplicateGpus": "eplb: (layer, GPU) pairs holding two replicas of one expert",
  "metrics.nodeBalancedness": "eplb: mean / max node load per layer, averaged over layers",
  "engines.vllm":
    "vLLM eplb_state.py: sum over layers of mean GPU load / sum over layers of max GPU load",
  "engines.sglang":
    "SGLang expert_distribution.py compute_utilization_rate: (mean + 1e-5) / (max + 1e-5) per layer, averaged over layers, on the summed loads",
  "engines.trtllm": "TensorRT-LLM ep_load_balancer: (max - mean) / mean per layer",
  "engines.vllmAscend": "vllm-ascend: max / mean GPU load per layer",
  sglangPerPass:
    "SGLang expert_distribution.py: current_pass_balancedness per forward pass, averaged over the passes (its last_N_average_balancedness)",
};

/**
 * Evaluates a placement under loads: every engine's balance figure, the reference's metrics and
 * the load each node carries, next to what the same GPUs would see without EPLB. The evaluate
 * stage of `eplb eval`.
 *
 * @param loads load per (layer, expert)
 * @param placement the placement to judge (slots GPU-major over `numGpus`)
 * @param numGpus GPUs the slots are spread over
 * @param numNodes nodes, dividing `numGpus` [default 1]
 * @param options per-pass loads and SGLang's recorded counts, for SGLang's per-pass figure
 * @returns the figures, each naming whose definition it follows (`definitions`)
 * @throws EplbInputError when the placement does not fit the loads (experts, layers) or the GPUs
 * @example
 * ```ts
 * const loads = lognormalLoads(4, 32, 1.0, 7);
 * const { placement } = rebalanceExperts(loads, 40, 4, 2, 8);
 * const report = evaluateForEngines(loads, placement, 8, 2);
 * report.engines.sglang.balancedness; // 0.89...
 * report.withoutEplb.balancedness; // 0.49...
 * ```
 */
export function evaluateForEngines(
  loads: LoadMatrix,
  placement: Placement,
  numGpus: number,
  numNodes = 1,
  options: EvalOptions = {},
): EvalReport {
  if (loads.experts !== placement.numExperts && loads.layers === placement.layers) {
    // The one mismatch a CLI user can fix with a flag gets the hint.
    throw new EplbInputError(
      "placement.numExperts",
      placement.numExperts,
      `must equal the number of experts in the loads (${loads.experts}); pass --experts if the placement leaves high ids unused`,
    );
  }
  requirePlacementFits(loads, placement, { numGpus, numNodes });
  const { layers } = loads;
  const gpu = gpuLoads(loads, placement, { numGpus });
  const nodes = nodeLoads(gpu, layers, numGpus, numNodes);
  const nodeTotals = new Array(numNodes).fill(0);
  const perLayer: number[][] = new Array(layers);
  for (let l = 0; l < layers; l++) {
    perLayer[l] = Array.from(nodes.subarray(l * numNodes, (l + 1) * numNodes));
    for (let n = 0; n < numNodes; n++) nodeTotals[n] += nodes[l * numNodes + n];
  }
  const total = nodeTotals.reduce((a, b) => a + b, 0);
  const baseline = contiguousGpuLoads(loads, numGpus);
  const baseSummary = summarizeBalance(baseline, layers, numGpus);
  return {
    layers,
    experts: loads.experts,
    replicas: placement.numReplicas,
    gpus: numGpus,
    nodes: numNodes,
    metrics: evaluatePlacement(loads, placement, { numGpus, numNodes }),
    engines: engineBalance(gpu, layers, numGpus),
    nodeShare: nodeTotals.map((t) => (total > 0 ? t / total : 1 / numNodes)),
    nodeLoads: perLayer,
    withoutEplb: {
      balancedness: baseSummary.balancedness,
      worstBalancedness: baseSummary.worstBalancedness,
      engines: engineBalance(baseline, layers, numGpus),
    },
    ...(options.passes && options.passes.steps > 0
      ? { sglangPerPass: sglangPerPass(options.passes, placement, numGpus, options.recorded) }
      : {}),
    definitions: EVAL_DEFINITIONS,
  };
}

/** SGLang's balancedness per pass, averaged: of the placement, without EPLB, and as recorded. */
function sglangPerPass(
  passes: Float64Trace,
  placement: Placement,
  numGpus: number,
  recorded: EvalOptions["recorded"],
): SglangPerPass {
  const { steps, layers, experts } = passes;
  const n = layers * experts;
  let withPlacement = 0;
  let without = 0;
  for (let t = 0; t < steps; t++) {
    const loads = { layers, experts, data: passes.data.subarray(t * n, (t + 1) * n) };
    withPlacement += sglangBalance(
      gpuLoads(loads, placement, { numGpus }),
      layers,
      numGpus,
    ).balancedness;
    without += sglangBalance(contiguousGpuLoads(loads, numGpus), layers, numGpus).balancedness;
  }
  const out: SglangPerPass = {
    passes: steps,
    placement: withPlacement / steps,
    withoutEplb: without / steps,
  };
  if (recorded && recorded.slots % numGpus === 0) {
    out.recorded = sglangPassBalance(
      recorded.physical,
      steps,
      layers,
      recorded.slots,
      numGpus,
    ).balancedness;
  }
  return out;
}

/**
 * What the loads of an {@link EvalReport} were read from: the description, file count, kinds and
 * forward passes of a {@link LoadSource}.
 *
 * @param source what the loads reader returned
 * @example
 * ```ts
 * loadsSummary(readLoadSources(["dump_0.pt", "dump_1.pt"])).files; // 2
 * ```
 */
export function loadsSummary(source: LoadSource): NonNullable<EvalReport["loads"]> {
  return {
    description: describeLoadSource(source),
    files: source.files,
    kinds: source.kinds,
    ...(source.passes ? { passes: source.passes.steps } : {}),
  };
}

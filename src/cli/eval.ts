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
import type { Float64Trace } from "../io/interpret.js";
import { describeLoadSource, type LoadSource } from "../io/sources.js";
import { integerFlag, parseFlags, requireString } from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import {
  fileFormatFlag,
  joinStepsValue,
  LOADS_HELP,
  LOADS_INPUT_HELP,
  LOADS_INPUT_OPTIONS,
  LOADS_OPTION,
  loadsInputFlags,
  loadsPaths,
  placementFileGpus,
  readLoadsInput,
  readPlacementFile,
  warnOnStderr,
} from "./inputs.js";
import { checkOutputPaths, fixed3, writeResult } from "./output.js";

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
 * the load each node carries, next to what the same GPUs would see without EPLB.
 *
 * @example
 * ```ts
 * const report = evaluateForEngines(loads, placement, 8, 2);
 * report.engines.sglang.balancedness; // 0.93...
 * report.withoutEplb.balancedness; // 0.61...
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
 * The readable table `eplb eval` prints: one row per figure, the placement beside the same
 * GPUs without EPLB.
 *
 * @example
 * ```ts
 * formatEvalTable(report);
 * // "eplb eval: 4 layers, 16 experts, 20 slots on 4 GPUs (1 node)\n\nfigure ... placement  without EPLB\n..."
 * ```
 */
export function formatEvalTable(r: EvalReport): string {
  const m = r.metrics;
  const e = r.engines;
  const b = r.withoutEplb.engines;
  const rows: [string, string, string][] = [
    [
      "balancedness, mean/max per layer (DeepSeek reference)",
      fixed3(m.balancedness),
      fixed3(r.withoutEplb.balancedness),
    ],
    ["  worst layer", fixed3(m.worstBalancedness), fixed3(r.withoutEplb.worstBalancedness)],
    [
      "vLLM balancedness (sum mean / sum max)",
      fixed3(e.vllm.balancedness),
      fixed3(b.vllm.balancedness),
    ],
    [
      "SGLang balancedness (avg+eps)/(max+eps), summed loads",
      fixed3(e.sglang.balancedness),
      fixed3(b.sglang.balancedness),
    ],
    [
      "TensorRT-LLM imbalance (max-mean)/mean",
      fixed3(e.trtllm.imbalance),
      fixed3(b.trtllm.imbalance),
    ],
    ["  worst layer", fixed3(e.trtllm.worstImbalance), fixed3(b.trtllm.worstImbalance)],
    [
      "vllm-ascend peak/average",
      fixed3(e.vllmAscend.peakOverAverage),
      fixed3(b.vllmAscend.peakOverAverage),
    ],
    [
      "  worst layer",
      fixed3(e.vllmAscend.worstPeakOverAverage),
      fixed3(b.vllmAscend.worstPeakOverAverage),
    ],
    ["max GPU load / lower bound, mean (eplb)", fixed3(m.maxOverLowerBound), "-"],
    ["  worst layer", fixed3(m.worstMaxOverLowerBound), "-"],
    ["(layer, GPU) pairs with an expert twice (eplb)", String(m.duplicateGpus), "0"],
    ["node balancedness, mean/max (eplb)", fixed3(m.nodeBalancedness), "-"],
  ];
  const pp = r.sglangPerPass;
  if (pp) {
    rows.splice(4, 0, [
      `SGLang balancedness per pass, mean of ${pp.passes} (SGLang's log)`,
      fixed3(pp.placement),
      fixed3(pp.withoutEplb),
    ]);
  }
  const w0 = Math.max(...rows.map((x) => x[0].length), "figure".length);
  const w1 = Math.max(...rows.map((x) => x[1].length), "placement".length);
  const line = (a: string, c: string, d: string) =>
    `${a.padEnd(w0)}  ${c.padStart(w1)}  ${d.padStart(12)}`;
  const share = r.nodeShare.map((s, n) => `node ${n} ${(100 * s).toFixed(1)}%`).join(", ");
  return [
    `eplb eval: ${r.layers} layers, ${r.experts} experts, ${r.replicas} slots on ${r.gpus} GPUs (${r.nodes} node${r.nodes === 1 ? "" : "s"})`,
    ...(r.loads ? [`loads: ${r.loads.description}`] : []),
    "",
    line("figure", "placement", "without EPLB"),
    ...rows.map(([a, c, d]) => line(a, c, d)),
    "",
    ...(pp?.recorded !== undefined
      ? [
          `SGLang's own balancedness while recording (its placement then, per pass on ${r.gpus} GPUs, mean of ${pp.passes}): ${fixed3(pp.recorded)}`,
          "",
        ]
      : []),
    `load per node (share of the total): ${share}`,
    "",
  ].join("\n");
}

export const evalCommand: CliCommand = {
  name: "eval",
  summary: "measure a placement under loads, in every engine's balance definition",
  help: `Usage: eplb eval --loads FILE|DIR [--loads FILE ...] --placement FILE [--gpus N] [--nodes N]
                 [--format F] [--steps a:b] [--key NAME] [--slot-placement FILE]
                 [--placement-format F] [--experts N] [--json] [--out FILE]

How good is a placement under these loads? Prints a table (or JSON with --json): balancedness
as DeepSeek's reference, vLLM, SGLang, TensorRT-LLM and vllm-ascend each define it, max GPU
load / lower bound, GPUs holding an expert twice, node balance and each node's share of the
load, next to the same GPUs without EPLB (experts in order, one slot each). Every figure
names whose definition it follows. With SGLang per_pass / per_token dumps, also SGLang's
balancedness as SGLang computes it (per forward pass, then averaged) and the value SGLang
logged while recording (the placement it ran then).

Options:
${LOADS_HELP}
${LOADS_INPUT_HELP}
  --placement FILE
                 the placement: eplb plan output, SGLang init file (.json/.pt), vLLM JSON,
                 vllm-ascend expert map, TensorRT-LLM YAML
  --placement-format F
                 force the placement file's format [default: detected]
  --gpus N       GPUs the slots are spread over, GPU-major [default: the device count a
                 vllm-ascend expert map states; required otherwise]
  --nodes N      nodes, dividing --gpus [default 1]
  --experts N    logical experts of the placement [default: the largest id + 1]
  --json         write the figures as JSON instead of the table
  --out FILE     write there instead of stdout
  -h, --help     this help

Example:
  eplb eval --loads dump.pt --placement init.json --gpus 32 --nodes 4
`,
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("eval", joinStepsValue(argv), {
      ...LOADS_OPTION,
      placement: { type: "string" },
      "placement-format": { type: "string" },
      gpus: { type: "string" },
      nodes: { type: "string" },
      experts: { type: "string" },
      json: { type: "boolean" },
      out: { type: "string" },
      ...LOADS_INPUT_OPTIONS,
    });
    const paths = loadsPaths(flags);
    const placementPath = requireString(flags, "placement");
    checkOutputPaths(flags, ctx);
    const loadOptions = loadsInputFlags(flags);
    const placementFormat = fileFormatFlag(flags, "placement-format");
    const numNodes = integerFlag(flags, "nodes", 1, 1);
    let numGpus = flags.gpus === undefined ? undefined : integerFlag(flags, "gpus", 1);
    const numExperts = flags.experts === undefined ? undefined : integerFlag(flags, "experts", 1);
    const source = readLoadsInput(paths, ctx.cwd, {
      ...loadOptions,
      onNote: warnOnStderr((text) => ctx.stderr(text)),
    });
    const loads = source.loads;
    const placement = readPlacementFile(placementPath, ctx, {
      format: placementFormat,
      numExperts: numExperts ?? loads.experts,
    });
    if (numGpus === undefined) {
      numGpus = placementFileGpus(placementPath, ctx.cwd, placementFormat);
      if (numGpus === undefined) {
        throw new UsageError(
          "--gpus is required (the placement file does not state its GPU count)",
        );
      }
    }
    const report = evaluateForEngines(loads, placement, numGpus, numNodes, {
      passes: source.passes,
      recorded: source.recorded,
    });
    report.loads = loadsSummary(source);
    const text = flags.json ? `${JSON.stringify(report)}\n` : formatEvalTable(report);
    writeResult(text, flags.out as string | undefined, ctx);
  },
};

function loadsSummary(source: LoadSource): NonNullable<EvalReport["loads"]> {
  return {
    description: describeLoadSource(source),
    files: source.files,
    kinds: source.kinds,
    ...(source.passes ? { passes: source.passes.steps } : {}),
  };
}

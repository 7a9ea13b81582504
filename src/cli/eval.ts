import { type EngineBalance, engineBalance } from "../core/engine-metrics.js";
import { EplbInputError } from "../core/errors.js";
import type { LoadMatrix } from "../core/matrix.js";
import {
  contiguousGpuLoads,
  evaluatePlacement,
  gpuLoads,
  nodeLoads,
  type PlacementMetrics,
  requirePlacementFits,
  summarizeBalance,
} from "../core/metrics.js";
import type { Placement } from "../core/placement.js";
import { integerFlag, parseFlags, requireString } from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import {
  fileFormatFlag,
  joinStepsValue,
  LOADS_INPUT_HELP,
  LOADS_INPUT_OPTIONS,
  loadsInputFlags,
  placementFileGpus,
  readLoadsFile,
  readPlacementFile,
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
}

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
): EvalReport {
  if (loads.experts !== placement.numExperts && loads.layers === placement.layers) {
    // The one mismatch a CLI user can fix with a flag gets the hint.
    throw new EplbInputError(
      "placement.numExperts",
      placement.numExperts,
      `must equal the number of experts in the loads (${loads.experts}); pass --experts if the placement leaves high ids unused`,
    );
  }
  requirePlacementFits(loads, placement, numGpus, numNodes);
  const { layers } = loads;
  const gpu = gpuLoads(loads, placement, numGpus);
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
    metrics: evaluatePlacement(loads, placement, numGpus, numNodes),
    engines: engineBalance(gpu, layers, numGpus),
    nodeShare: nodeTotals.map((t) => (total > 0 ? t / total : 1 / numNodes)),
    nodeLoads: perLayer,
    withoutEplb: {
      balancedness: baseSummary.balancedness,
      worstBalancedness: baseSummary.worstBalancedness,
      engines: engineBalance(baseline, layers, numGpus),
    },
  };
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
      "balancedness, mean/max per layer (DeepSeek)",
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
      "SGLang balancedness (avg+eps)/(max+eps)",
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
    ["max GPU load / lower bound, mean", fixed3(m.maxOverLowerBound), "-"],
    ["  worst layer", fixed3(m.worstMaxOverLowerBound), "-"],
    ["(layer, GPU) pairs with an expert twice", String(m.duplicateGpus), "0"],
    ["node balancedness (mean/max)", fixed3(m.nodeBalancedness), "-"],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length), "figure".length);
  const w1 = Math.max(...rows.map((x) => x[1].length), "placement".length);
  const line = (a: string, c: string, d: string) =>
    `${a.padEnd(w0)}  ${c.padStart(w1)}  ${d.padStart(12)}`;
  const share = r.nodeShare.map((s, n) => `node ${n} ${(100 * s).toFixed(1)}%`).join(", ");
  return [
    `eplb eval: ${r.layers} layers, ${r.experts} experts, ${r.replicas} slots on ${r.gpus} GPUs (${r.nodes} node${r.nodes === 1 ? "" : "s"})`,
    "",
    line("figure", "placement", "without EPLB"),
    ...rows.map(([a, c, d]) => line(a, c, d)),
    "",
    `load per node (share of the total): ${share}`,
    "",
  ].join("\n");
}

export const evalCommand: CliCommand = {
  name: "eval",
  summary: "measure a placement under loads, in every engine's balance definition",
  help: `Usage: eplb eval --loads FILE --placement FILE [--gpus N] [--nodes N] [--format F]
                 [--steps a:b] [--placement-format F] [--experts N] [--json] [--out FILE]

How good is a placement under these loads? Prints a table (or JSON with --json): balancedness
as DeepSeek's reference, vLLM, SGLang, TensorRT-LLM and vllm-ascend each define it, max GPU
load / lower bound, GPUs holding an expert twice, node balance and each node's share of the
load, next to the same GPUs without EPLB (experts in order, one slot each).

Options:
  --loads FILE   loads per (layer, expert), any format eplb plan reads
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
      loads: { type: "string" },
      placement: { type: "string" },
      "placement-format": { type: "string" },
      gpus: { type: "string" },
      nodes: { type: "string" },
      experts: { type: "string" },
      json: { type: "boolean" },
      out: { type: "string" },
      ...LOADS_INPUT_OPTIONS,
    });
    const loadsPath = requireString(flags, "loads");
    const placementPath = requireString(flags, "placement");
    checkOutputPaths(flags, ctx);
    const loadOptions = loadsInputFlags(flags);
    const placementFormat = fileFormatFlag(flags, "placement-format");
    const numNodes = integerFlag(flags, "nodes", 1, 1);
    let numGpus = flags.gpus === undefined ? undefined : integerFlag(flags, "gpus", 1);
    const numExperts = flags.experts === undefined ? undefined : integerFlag(flags, "experts", 1);
    const loads = readLoadsFile(loadsPath, ctx.cwd, loadOptions);
    const placement = readPlacementFile(placementPath, ctx.cwd, {
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
    const report = evaluateForEngines(loads, placement, numGpus, numNodes);
    const text = flags.json ? `${JSON.stringify(report)}\n` : formatEvalTable(report);
    writeResult(text, flags.out as string | undefined, ctx);
  },
};

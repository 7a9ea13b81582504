import { localityViolation } from "../core/migration/previous.js";
import { makeTopology } from "../core/model/topology.js";
import { localityMetrics } from "../core/routing/summary.js";
import { type EvalReport, evaluateForEngines, loadsSummary } from "../pipeline/evaluate.js";
import { hierarchyMetrics } from "../pipeline/locality.js";
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
import { hierarchyLines, localityLines } from "./locality-summary.js";
import { checkOutputPaths, fixed3, writeResult } from "./output.js";
import { ROUTING_HELP, ROUTING_OPTIONS, readRoutingFlag } from "./routing-flags.js";

/**
 * The readable table `eplb eval` prints: one row per figure, the placement beside the same
 * GPUs without EPLB.
 *
 * @example
 * ```ts
 * const loads = lognormalLoads(4, 16, 1.0, 7);
 * const report = evaluateForEngines(loads, rebalanceExperts(loads, 20, 1, 1, 4).placement, 4);
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
    ...(r.hierarchy ? hierarchyLines(r.hierarchy, "placement") : []),
    ...(r.locality ? localityLines(r.locality, "placement") : []),
    "",
  ].join("\n");
}

export const evalCommand: CliCommand = {
  name: "eval",
  summary: "measure a placement under loads, in every engine's balance definition",
  help: `Usage: eplb eval --loads FILE|DIR [--loads FILE ...] --placement FILE [--gpus N] [--nodes N]
                 [--format F] [--steps a:b] [--key NAME] [--slot-placement FILE]
                 [--placement-format F] [--experts N] [--groups N] [--routing FILE|DIR ...]
                 [--json] [--out FILE]

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
  --groups N     expert groups: when they divide over the nodes and the placement keeps
                 every group on one node (a strict hierarchy), the gap to the flat lower
                 bound is split into the hierarchy's own cost and the placement's loss
                 within it, beside what --relaxed would plan (JSON: hierarchy)
${ROUTING_HELP}
                 (JSON: locality)
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
      groups: { type: "string" },
      json: { type: "boolean" },
      ...ROUTING_OPTIONS,
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
    const numGroups = flags.groups === undefined ? undefined : integerFlag(flags, "groups", 1);
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
    const routing = readRoutingFlag(flags, ctx.cwd, loads, (t) => ctx.stderr(t));
    if (numGroups !== undefined && numGroups % numNodes === 0) {
      const topology = makeTopology(
        loads.experts,
        placement.numReplicas,
        numGroups,
        numNodes,
        numGpus,
      );
      // Only a placement that keeps the hierarchy is judged against the hierarchy's bound.
      const broken = localityViolation(placement, topology);
      if (broken) {
        ctx.stderr(
          `note: layer ${broken.layer} spreads group ${broken.group} over several nodes: the placement is not a strict hierarchy, so it is judged against the flat lower bound only\n`,
        );
      } else {
        const m = report.metrics;
        report.hierarchy = hierarchyMetrics(
          loads,
          m.maxGpuLoad,
          m.lowerBound,
          topology,
          "balanced",
          routing,
        );
      }
    }
    if (routing) report.locality = localityMetrics(routing, placement, { numGpus, numNodes });
    const text = flags.json ? `${JSON.stringify(report)}\n` : formatEvalTable(report);
    writeResult(text, flags.out as string | undefined, ctx);
  },
};

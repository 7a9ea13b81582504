import type { LoadMatrix } from "../core/matrix.js";
import {
  contiguousGpuLoads,
  evaluatePlacement,
  type PlacementMetrics,
  summarizeBalance,
} from "../core/metrics.js";
import { DEFAULT_POLICY, getPolicy, policyNames } from "../core/policies/index.js";
import { type RebalanceResult, rebalanceExperts } from "../core/rebalance.js";
import {
  parseFlags,
  requireString,
  TOPOLOGY_HELP,
  TOPOLOGY_OPTIONS,
  topologyFlags,
} from "./args.js";
import type { CliCommand, CliContext } from "./command.js";
import {
  joinStepsValue,
  LOADS_INPUT_HELP,
  LOADS_INPUT_OPTIONS,
  loadsInputFlags,
  readLoadsFile,
} from "./inputs.js";
import { fixed3, writeResult } from "./output.js";
import {
  outputFormatFlag,
  PLACEMENT_OUTPUT_HELP,
  PLACEMENT_OUTPUT_OPTIONS,
  renderPlacement,
} from "./placement-output.js";

/** The `metrics` object `eplb plan` writes beside the placement. */
export interface PlanMetrics {
  policy: string;
  mode: "hierarchical" | "global";
  layers: number;
  experts: number;
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
  /** Without EPLB: experts in order, one slot each. */
  before: { balancedness: number; worstBalancedness: number };
  after: PlacementMetrics;
  timeMs: number;
}

/**
 * Plans and measures: runs the policy, times it, and evaluates the plan against the same loads
 * and against EP without EPLB.
 *
 * @example
 * ```ts
 * const { result, metrics } = planWithMetrics(loads, 16, 4, 2, 8, "deepseek");
 * metrics.after.balancedness; // 0.9...
 * ```
 */
export function planWithMetrics(
  loads: LoadMatrix,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  policy: string,
): { result: RebalanceResult; metrics: PlanMetrics } {
  const start = performance.now();
  const result = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, { policy });
  const timeMs = performance.now() - start;
  const before = summarizeBalance(contiguousGpuLoads(loads, numGpus), loads.layers, numGpus);
  const metrics: PlanMetrics = {
    policy,
    mode: result.topology.hierarchical ? "hierarchical" : "global",
    layers: loads.layers,
    experts: loads.experts,
    replicas: numReplicas,
    groups: numGroups,
    nodes: numNodes,
    gpus: numGpus,
    before: { balancedness: before.balancedness, worstBalancedness: before.worstBalancedness },
    after: evaluatePlacement(loads, result.placement, numGpus, numNodes),
    timeMs,
  };
  return { result, metrics };
}

/**
 * The human summary `eplb plan` prints on stderr.
 *
 * @example
 * ```ts
 * formatPlanSummary(metrics);
 * // "eplb plan: 2 layers, 12 experts -> 16 slots on 8 GPUs (2 nodes), policy deepseek (hierarchical)\n..."
 * ```
 */
export function formatPlanSummary(m: PlanMetrics): string {
  const a = m.after;
  return [
    `eplb plan: ${m.layers} layers, ${m.experts} experts -> ${m.replicas} slots on ${m.gpus} GPUs (${m.nodes} nodes), policy ${m.policy} (${m.mode})`,
    `  balancedness (mean/max GPU load)  before ${fixed3(m.before.balancedness)} (worst layer ${fixed3(m.before.worstBalancedness)})  after ${fixed3(a.balancedness)} (worst layer ${fixed3(a.worstBalancedness)})`,
    `  max GPU load / lower bound        ${fixed3(a.maxOverLowerBound)} mean, ${fixed3(a.worstMaxOverLowerBound)} worst layer`,
    `  GPUs holding two replicas of one expert: ${a.duplicateGpus} (layer-GPU pairs)`,
    `  planned in ${m.timeMs.toFixed(2)} ms`,
    "",
  ].join("\n");
}

export const planCommand: CliCommand = {
  name: "plan",
  summary: "plan a placement from a loads file (JSON out, summary on stderr)",
  get help() {
    return `Usage: eplb plan --loads FILE --replicas N --gpus N [--groups N] [--nodes N] [--policy NAME]
                 [--format F] [--steps a:b] [--output-format NAME] [--out FILE]

Plans where every expert's replicas live and writes the placement to stdout (or --out):
by default JSON {"phy2log", "log2phy", "logcnt", "metrics"}, or the file an engine loads
(--output-format sglang, vllm, vllm-ascend, trtllm). A short summary goes to stderr:
balancedness before (experts in order, no replication) and after, max GPU load / lower
bound, duplicate replicas on one GPU, time.

Options:
  --loads FILE   loads per (layer, expert): JSON (2-D array, {"weight"}, {"logical_count"}),
                 CSV, .npy, torch .pt (SGLang recorder dumps), safetensors; 3-D traces
                 [steps, layers, experts] are summed over the steps
${LOADS_INPUT_HELP}
${TOPOLOGY_HELP}
  --policy NAME  one of: ${policyNames()
    .map((n) => `${n}${n === DEFAULT_POLICY ? " (default)" : ""}`)
    .join(", ")}
${policyNames()
  .map((n) => `                   ${n}: ${getPolicy(n).description}`)
  .join("\n")}
${PLACEMENT_OUTPUT_HELP}
  --out FILE     write the placement there instead of stdout
  -h, --help     this help

Example:
  eplb plan --loads examples/loads.json --replicas 16 --groups 4 --nodes 2 --gpus 8
  eplb plan --loads dump.pt --replicas 288 --groups 8 --nodes 4 --gpus 32 \\
    --output-format sglang --out init.json
`;
  },
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("plan", joinStepsValue(argv), {
      loads: { type: "string" },
      ...TOPOLOGY_OPTIONS,
      policy: { type: "string" },
      out: { type: "string" },
      ...LOADS_INPUT_OPTIONS,
      ...PLACEMENT_OUTPUT_OPTIONS,
    });
    const loadsPath = requireString(flags, "loads");
    const { numReplicas, numGroups, numNodes, numGpus } = topologyFlags(flags);
    const policy = typeof flags.policy === "string" ? flags.policy : DEFAULT_POLICY;
    getPolicy(policy);
    outputFormatFlag(flags);
    const loads = readLoadsFile(loadsPath, ctx.cwd, loadsInputFlags(flags));
    const { result, metrics } = planWithMetrics(
      loads,
      numReplicas,
      numGroups,
      numNodes,
      numGpus,
      policy,
    );
    const text = renderPlacement(result.placement, flags, { numGpus, metrics }, ctx);
    writeResult(text, flags.out as string | undefined, ctx);
    ctx.stderr(formatPlanSummary(metrics));
  },
};

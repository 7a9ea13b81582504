import type { Placement } from "../core/model/placement.js";
import { DEFAULT_POLICY, getPolicy, policyNames } from "../core/policies/index.js";
import { localityMetrics } from "../core/routing/summary.js";
import { planWithMetrics } from "../pipeline/plan.js";
import { recordedPlanShape } from "../pipeline/read.js";
import { placementReport } from "../pipeline/report.js";
import type { ReportInput } from "../report/model.js";
import {
  checkTopologyFlagLimits,
  integerFlag,
  parseFlags,
  requireString,
  TOPOLOGY_HELP,
  TOPOLOGY_OPTIONS,
} from "./args.js";
import type { CliCommand, CliContext } from "./command.js";
import { UsageError } from "./command.js";
import { COST_HELP, COST_OPTIONS, costFlags } from "./cost-flags.js";
import {
  joinStepsValue,
  LOADS_HELP,
  LOADS_INPUT_HELP,
  LOADS_INPUT_OPTIONS,
  LOADS_OPTION,
  loadsInputFlags,
  loadsPaths,
  readLoadsInput,
  readPlacementFile,
  warnOnStderr,
} from "./inputs.js";
import { checkOutputPaths, fixed3, writeResult } from "./output.js";
import { ROUTING_HELP, ROUTING_OPTIONS, readRoutingFlag } from "./routing-flags.js";
import { packageVersion } from "./version.js";

/**
 * Parses `--layers 0,5,57` into layer indices checked against the number of layers.
 *
 * @example
 * ```ts
 * parseLayerList("3, 7", 58); // [3, 7]
 * parseLayerList("60", 58);   // throws UsageError: --layers: 60 is not a layer (0..57)
 * ```
 */
export function parseLayerList(text: string, layers: number): number[] {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const t = part.trim();
    if (!/^\d+$/.test(t)) {
      throw new UsageError(`--layers (${JSON.stringify(text)}) must be layer indices like 0,5,57`);
    }
    const l = Number(t);
    if (l >= layers) throw new UsageError(`--layers: ${l} is not a layer (0..${layers - 1})`);
    out.push(l);
  }
  return out;
}

export const reportCommand: CliCommand = {
  name: "report",
  summary: "write a self-contained HTML report (charts of balance, GPU loads, placement, loads)",
  get help() {
    return `Usage: eplb report --loads FILE|DIR [--loads FILE ...] --html FILE [--placement FILE | --replicas N --gpus N [--groups N] [--nodes N] [--policy NAME]]
                   [--previous FILE] [--routing FILE|DIR ...] [--format F] [--steps a:b] [--key NAME]
                   [--slot-placement FILE]

Writes one self-contained HTML file (inline SVG and CSS, no scripts, works offline):
balancedness per layer before (experts in order, one slot each) and after, per-GPU
loads of the worst layers, the placement grid (GPUs by slots, coloured by expert),
a layer-by-expert load heatmap and a summary table. Plans with --replicas etc., or
reports on an existing placement with --placement.

Options:
${LOADS_HELP}
${LOADS_INPUT_HELP}
  --html FILE    where to write the report ("-" for stdout)
  --placement FILE
                 report on this placement (eplb plan's JSON, SGLang, vLLM, vllm-ascend,
                 TensorRT-LLM files) instead of planning; --gpus, --nodes and --groups
                 default to what an eplb plan JSON records
${TOPOLOGY_HELP}
  --policy NAME  one of: ${policyNames().join(", ")} [default: ${DEFAULT_POLICY}]
  --previous FILE
                 the placement the engine runs now (any placement file): plan by
                 rebalancing from it (as eplb plan --previous), or with --placement compare
                 the two; the report gains a migration section (slots changed, transfers by
                 kind, balancedness per layer before and after the move) and outlines the
                 changed slots in the placement grids
${ROUTING_HELP}
                 The report gains a "Dispatch locality" section: the figures (and
                 --previous's), remote nodes per layer and a node-by-node traffic heatmap.
                 When the report plans (no --placement) the plan is made local, as eplb
                 plan --routing makes it, with --previous within the default move budget
                 and locality gain (docs/locality.md#placement)
  --layers LIST  layers to show in detail (GPU bars, placement grid), e.g. 0,12,57
                 [default: the worst after, the worst before and a median layer]
  --title TEXT   page heading [default: EPLB report]
  cost flags     with --previous: the migration section gains the transfer schedule
                 (rounds by GPUs) and its estimated time; see below
${COST_HELP}
  -h, --help     this help

Examples:
  eplb report --loads examples/loads.json --replicas 16 --groups 4 --nodes 2 --gpus 8 --html report.html
  eplb plan --loads loads.json --replicas 288 --groups 8 --nodes 4 --gpus 32 --out plan.json
  eplb report --loads loads.json --placement plan.json --html report.html
  eplb report --loads next.npy --previous init.json --replicas 288 --groups 8 --nodes 4 --gpus 32 --html moves.html
`;
  },
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("report", joinStepsValue(argv), {
      ...LOADS_OPTION,
      ...LOADS_INPUT_OPTIONS,
      html: { type: "string" },
      placement: { type: "string" },
      previous: { type: "string" },
      ...TOPOLOGY_OPTIONS,
      policy: { type: "string" },
      layers: { type: "string" },
      title: { type: "string" },
      ...COST_OPTIONS,
      ...ROUTING_OPTIONS,
    });
    // Only transfers are priced here: no compute price needed.
    const cost = costFlags(flags, { requireCompute: false });
    if (cost && flags.previous === undefined) {
      throw new UsageError(
        "cost flags price a rebalance's transfers: give --previous (the placement the engine runs now)",
      );
    }
    const paths = loadsPaths(flags);
    const loadsPath = paths.join(", ");
    const htmlPath = requireString(flags, "html");
    checkOutputPaths(flags, ctx);
    const placementPath = flags.placement;
    if (placementPath !== undefined) {
      if (typeof placementPath !== "string" || placementPath === "") {
        throw new UsageError("--placement needs a file");
      }
      for (const name of ["replicas", "policy"]) {
        if (flags[name] !== undefined) {
          throw new UsageError(
            `--${name} plans a placement; it cannot be combined with --placement (which reports on one)`,
          );
        }
      }
    }
    const policyFlag = typeof flags.policy === "string" ? flags.policy : DEFAULT_POLICY;
    if (placementPath === undefined) getPolicy(policyFlag);
    const title = typeof flags.title === "string" ? flags.title : undefined;
    const loadsOptions = loadsInputFlags(flags);
    const loads = readLoadsInput(paths, ctx.cwd, {
      ...loadsOptions,
      onNote: warnOnStderr((text) => ctx.stderr(text)),
    }).loads;
    const detailLayers =
      typeof flags.layers === "string" ? parseLayerList(flags.layers, loads.layers) : undefined;
    const previousPath = flags.previous;
    if (previousPath !== undefined && (typeof previousPath !== "string" || previousPath === "")) {
      throw new UsageError("--previous needs a file");
    }
    const previous =
      typeof previousPath === "string"
        ? readPlacementFile(previousPath, ctx, { numExperts: loads.experts })
        : undefined;
    const common = {
      loads,
      title,
      detailLayers,
      previous,
      ...(cost ? { cost } : {}),
      generator: `eplb ${packageVersion()}`,
    };
    const previousSource = typeof previousPath === "string" ? { previous: previousPath } : {};
    let input: ReportInput;
    const routing = readRoutingFlag(flags, ctx.cwd, loads, (t) => ctx.stderr(t));
    if (typeof placementPath === "string") {
      const recorded = recordedPlanShape(placementPath, ctx.cwd);
      const placement: Placement = readPlacementFile(placementPath, ctx, {
        numExperts: loads.experts,
      });
      const numGpus = integerFlag(flags, "gpus", 1, recorded.gpus ?? Number.NaN);
      if (Number.isNaN(numGpus)) {
        throw new UsageError(
          `--gpus is required with --placement (${placementPath} does not record the GPU count)`,
        );
      }
      input = {
        ...common,
        placement,
        numGpus,
        numNodes: integerFlag(flags, "nodes", 1, recorded.nodes ?? 1),
        numGroups: integerFlag(flags, "groups", 1, recorded.groups ?? 1),
        policy: recorded.policy ? `${recorded.policy} (from file)` : "from file",
        mode: recorded.mode,
        sources: { loads: loadsPath, placement: placementPath, ...previousSource },
      };
    } else {
      const numReplicas = integerFlag(flags, "replicas", 1);
      const numGpus = integerFlag(flags, "gpus", 1);
      const numNodes = integerFlag(flags, "nodes", 1, 1);
      const numGroups = integerFlag(flags, "groups", 1, 1);
      checkTopologyFlagLimits({ numReplicas, numGroups, numNodes, numGpus });
      const { result, metrics } = planWithMetrics(
        loads,
        numReplicas,
        numGroups,
        numNodes,
        numGpus,
        policyFlag,
        // As eplb plan: a routing makes the plan local (from a previous placement, each
        // locality move priced in slots changed, at the default localityGain).
        { ...(previous ? { previous } : {}), ...(routing ? { routing } : {}) },
      );
      input = {
        ...common,
        placement: result.placement,
        numGpus,
        numNodes,
        numGroups,
        policy: metrics.policy,
        mode: metrics.mode,
        sources: { loads: loadsPath, ...previousSource },
      };
    }
    if (routing) {
      input.locality = localityMetrics(
        routing,
        input.placement,
        { numGpus: input.numGpus, numNodes: input.numNodes ?? 1 },
        previous,
      );
    }
    const { html, model } = placementReport(input);
    writeResult(html, htmlPath === "-" ? undefined : htmlPath, ctx);
    const size = Buffer.byteLength(html);
    ctx.stderr(
      `eplb report: ${htmlPath === "-" ? "wrote the report to stdout" : `wrote ${htmlPath}`} ` +
        `(${size >= 1e6 ? `${(size / 1e6).toFixed(2)} MB` : `${Math.ceil(size / 1e3)} kB`}): ` +
        `balancedness ${fixed3(model.before.balancedness)} before, ${fixed3(model.after.balancedness)} after ` +
        `(worst layer ${fixed3(model.before.worstBalancedness)} -> ${fixed3(model.after.worstBalancedness)})` +
        (model.migration
          ? `; from the previous placement (balancedness ${fixed3(model.migration.previousBalance.balancedness)}): ` +
            `${model.migration.slotsChanged} of ${model.layers * model.numReplicas} slots changed`
          : "") +
        "\n",
    );
  },
};

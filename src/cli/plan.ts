import { transferList } from "../core/evaluation/transfers.js";
import {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  type MigrationMetrics,
} from "../core/migration/index.js";
import { type Placement, toReferencePlacement } from "../core/model/placement.js";
import { DEFAULT_POLICY, getPolicy, policyNames } from "../core/policies/index.js";
import { DEFAULT_LOCALITY_TOLERANCE } from "../core/policies/locality.js";
import { DEFAULT_LOCALITY_GAIN } from "../core/policies/locality-moves.js";
import type { RebalanceOptions } from "../core/rebalance.js";
import { localityMetrics } from "../core/routing/summary.js";
import type { LoadsNote } from "../io/read.js";
import { describeLoadSource, type LoadSource } from "../io/sources.js";
import type { LocalityPlanMetrics, PlanMetrics } from "../pipeline/plan.js";
import { planScheduled, type ScheduleMetrics, transfersFile } from "../pipeline/schedule.js";
import {
  type Flags,
  integerFlag,
  numberFlag,
  parseFlags,
  TOPOLOGY_HELP,
  TOPOLOGY_OPTIONS,
  topologyFlags,
} from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import { COST_HELP, COST_OPTIONS, costFlags, hardwareShapeWarning } from "./cost-flags.js";
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
} from "./inputs.js";
import { hierarchyLines, localityLines } from "./locality-summary.js";
import { checkOutputPaths, fixed3, writeResult } from "./output.js";
import {
  outputFormatFlag,
  PLACEMENT_OUTPUT_HELP,
  PLACEMENT_OUTPUT_OPTIONS,
  renderPlacement,
} from "./placement-output.js";
import { ROUTING_HELP, ROUTING_OPTIONS, readRoutingFlag } from "./routing-flags.js";

/**
 * The human summary `eplb plan` prints on stderr; `read` lines say what the loads reader found
 * (a TensorRT-LLM statistics folder's ranks, iterations and layers).
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix([
 *   [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
 *   [20, 30, 150, 60, 10, 95, 70, 45, 120, 33, 80, 12],
 * ]);
 * const { metrics } = planWithMetrics(loads, 16, 4, 2, 8, "deepseek");
 * formatPlanSummary(metrics, ["1 file (loads file)"]).split("\n").slice(0, 2);
 * // ["eplb plan: 2 layers, 12 experts -> 16 slots on 8 GPUs (2 nodes), policy deepseek (hierarchical)", "  read: 1 file (loads file)"]
 * ```
 */
export function formatPlanSummary(m: PlanMetrics, read: readonly string[] = []): string {
  const a = m.after;
  return [
    `eplb plan: ${m.layers} layers, ${m.experts} experts -> ${m.replicas} slots on ${m.gpus} GPUs (${m.nodes} nodes), policy ${m.policy} (${m.mode})`,
    ...read.map((text) => `  read: ${text}`),
    `  balancedness (mean/max GPU load)  before ${fixed3(m.before.balancedness)} (worst layer ${fixed3(m.before.worstBalancedness)})  after ${fixed3(a.balancedness)} (worst layer ${fixed3(a.worstBalancedness)})`,
    `  max GPU load / lower bound        ${fixed3(a.maxOverLowerBound)} mean, ${fixed3(a.worstMaxOverLowerBound)} worst layer (lower bound ${meanOf(a.lowerBound).toPrecision(6)} per layer on average)`,
    `  GPUs holding two replicas of one expert: ${a.duplicateGpus} (layer-GPU pairs)`,
    ...(m.mode === "hierarchical" && m.nodes > 1
      ? [`  load served off its group's node: ${(100 * a.offNodeShare).toFixed(1)}%`]
      : []),
    ...(m.migration ? [formatMigrationLine(m.migration, m.layers * m.replicas)] : []),
    ...(m.schedule ? [formatScheduleLine(m.schedule)] : []),
    ...(m.hierarchy ? hierarchyLines(m.hierarchy, "plan") : []),
    ...(m.localityPlan ? localityPlanLines(m.localityPlan) : []),
    ...(m.locality ? localityLines(m.locality, "plan") : []),
    `  planned in ${m.timeMs.toFixed(2)} ms`,
    "",
  ].join("\n");
}

/**
 * The summary lines of `metrics.localityPlan`: remote nodes per token, balancedness and max GPU
 * load of the plan without locality and of the plan made local (from a previous placement:
 * remote nodes per token of the previous, migrated and final plans, and slots changed).
 *
 * @example
 * ```ts
 * const side = (r: number) => ({ remoteNodesPerToken: r, balancedness: 0.99, maxGpuLoad: 100 });
 * localityPlanLines({ locality: "global", tolerance: 0.005, unlocalized: side(3), local: side(2) })[0];
 * // "  locality (--routing, tolerance 0.005): remote nodes per token 3.000 -> 2.000 (-33.3%); ..."
 * ```
 */
export function localityPlanLines(m: LocalityPlanMetrics): string[] {
  const u = m.unlocalized;
  const l = m.local;
  const cut = u.remoteNodesPerToken > 0 ? 1 - l.remoteNodesPerToken / u.remoteNodesPerToken : 0;
  if (m.locality === "strict") {
    return [
      `  locality (--routing): under the strict hierarchy groups fix each expert's node, so the plan is unchanged (--relaxed lets redundant replicas move); remote nodes per token ${fixed3(l.remoteNodesPerToken)}`,
    ];
  }
  const p = m.fromPrevious;
  if (p) {
    return [
      `  locality from previous (--routing, gain ${p.localityGain} per slot, tolerance ${m.tolerance}): remote nodes per token previous ${fixed3(p.previousRemoteNodesPerToken)}, migrated ${fixed3(u.remoteNodesPerToken)}, final ${fixed3(l.remoteNodesPerToken)} (-${(100 * cut).toFixed(1)}% against migrated); slots changed ${p.unlocalizedSlotsChanged} -> ${p.localSlotsChanged}; balancedness ${fixed3(u.balancedness)} -> ${fixed3(l.balancedness)}`,
    ];
  }
  return [
    `  locality (--routing, tolerance ${m.tolerance}): remote nodes per token ${fixed3(u.remoteNodesPerToken)} -> ${fixed3(l.remoteNodesPerToken)} (-${(100 * cut).toFixed(1)}%); balancedness ${fixed3(u.balancedness)} -> ${fixed3(l.balancedness)}; max GPU load ${u.maxGpuLoad.toPrecision(6)} -> ${l.maxGpuLoad.toPrecision(6)} (mean over layers)`,
  ];
}

function meanOf(values: number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length > 0 ? sum / values.length : 0;
}

/**
 * The summary line of a plan made from `--previous`: slots changed, transfers by kind, and the
 * max GPU load before and after as a multiple of a fresh plan's.
 *
 * @example
 * ```ts
 * const previous = rebalanceExperts([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]], 16, 4, 2, 8);
 * const shifted = toLoadMatrix([[20, 30, 150, 60, 10, 95, 70, 45, 120, 33, 80, 12]]);
 * const { metrics } = planWithMetrics(shifted, 16, 4, 2, 8, "balanced", { previous: previous.placement });
 * formatMigrationLine(metrics.migration!, 16);
 * // "  from previous: 5 of 16 slots changed (31.3%): 0 local, 5 intra-node, 0 inter-node (busiest GPU receives 1, sends 2); max GPU load / fresh plan's 1.900 before, 1.150 after"
 * ```
 */
export function formatMigrationLine(m: MigrationMetrics, slots: number): string {
  const t = m.transfers;
  return `  from previous: ${m.slotsChanged} of ${slots} slots changed (${(100 * m.slotsChangedShare).toFixed(1)}%): ${t.local} local, ${t.intraNode} intra-node, ${t.interNode} inter-node (busiest GPU receives ${m.maxGpuTransfersIn}, sends ${m.maxGpuTransfersOut}); max GPU load / fresh plan's ${fixed3(m.beforeOverFresh)} before, ${fixed3(m.afterOverFresh)} after`;
}

/**
 * The summary line of a rebalance's transfer schedule: rounds (each GPU sends and receives at
 * most one expert per round), the layer chunks, and under a cost model the estimated time.
 *
 * @example
 * ```ts
 * formatScheduleLine({ rounds: 96, estimatedMs: 84.2 });
 * // "  transfer schedule: 96 rounds (each GPU sends and receives at most one expert per round); estimated 84.2 ms"
 * ```
 */
export function formatScheduleLine(s: ScheduleMetrics): string {
  const chunks = s.layerChunk !== undefined ? ` in chunks of ${s.layerChunk} layers` : "";
  const time = s.estimatedMs !== undefined ? `; estimated ${s.estimatedMs.toFixed(1)} ms` : "";
  const budget =
    s.moveBudgetMs !== undefined
      ? ` (move budget ${s.moveBudgetMs} ms: the largest slot budget that fits, ${s.plansTried} plans tried)`
      : "";
  return `  transfer schedule: ${s.rounds} rounds${chunks} (each GPU sends and receives at most one expert per round)${time}${budget}`;
}

/**
 * `--move-budget` as a time, `150ms` or `0.2s`: milliseconds, or undefined for the slot forms.
 *
 * @example
 * ```ts
 * moveBudgetMsFlag({ "move-budget": "150ms" }); // 150
 * moveBudgetMsFlag({ "move-budget": "0.2s" }); // 200
 * moveBudgetMsFlag({ "move-budget": "0.1" }); // undefined
 * ```
 */
export function moveBudgetMsFlag(flags: Flags): number | undefined {
  const v = flags["move-budget"];
  const time = typeof v === "string" ? /^(\d*\.?\d+)(ms|s)$/.exec(v) : null;
  if (!time) return undefined;
  return Number(time[1]) * (time[2] === "s" ? 1000 : 1);
}

/**
 * `--move-budget`: slots per layer (an integer) or a fraction of them (in (0, 1)).
 *
 * @example
 * ```ts
 * moveBudgetFlag({ "move-budget": "0.1" }); // 0.1
 * moveBudgetFlag({ "move-budget": "12" }); // 12
 * ```
 */
export function moveBudgetFlag(flags: Flags): number | undefined {
  const v = flags["move-budget"];
  if (v === undefined || moveBudgetMsFlag(flags) !== undefined) return undefined;
  const n = typeof v === "string" && /^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!(Number.isInteger(n) || (n > 0 && n < 1))) {
    throw new UsageError(
      `--move-budget (${JSON.stringify(v)}) must be slots per layer (an integer >= 0), a fraction in (0, 1) or a time (150ms, 0.2s)`,
    );
  }
  return n;
}

export const planCommand: CliCommand = {
  name: "plan",
  summary: "plan a placement from a loads file (JSON out, summary on stderr)",
  get help() {
    return `Usage: eplb plan --loads FILE|DIR [--loads FILE ...] --replicas N --gpus N [--groups N] [--nodes N]
                 [--policy NAME] [--relaxed] [--format F] [--steps a:b] [--key NAME]
                 [--slot-placement FILE] [--output-format NAME] [--out FILE]
                 [--previous FILE [--move-budget N|FRACTION|TIME] [--min-gain F] [--slot-gain F]
                  [--transfers FILE] [--chunk-layers N] [cost model flags]]
                 [--routing FILE|DIR ...]

Plans where every expert's replicas live and writes the placement to stdout (or --out):
by default JSON {"phy2log", "log2phy", "logcnt", "metrics"}, or the file an engine loads
(--output-format sglang, vllm, vllm-ascend, trtllm; see below). With vllm-ascend no GPU
holds an expert twice (that engine would misroute it): the plan is repaired where a policy
leaves one, and the deepseek policy's exact plan is refused if it has one. A short summary
goes to stderr:
balancedness before (experts in order, no replication) and after, max GPU load / lower
bound, duplicate replicas on one GPU, time. Under a strict hierarchy (groups kept on nodes)
it also splits the gap to the flat lower bound into the hierarchy's own cost and the plan's
loss within it, and says what --relaxed would plan (metrics.hierarchy in the JSON).

Options:
${LOADS_HELP}
                 3-D traces [steps, layers, experts] are summed over the steps
${LOADS_INPUT_HELP}
${TOPOLOGY_HELP}
  --policy NAME  one of: ${policyNames()
    .map((n) => `${n}${n === DEFAULT_POLICY ? " (default)" : ""}`)
    .join(", ")}
${policyNames()
  .map((n) => `                   ${n}: ${getPolicy(n).description}`)
  .join("\n")}
${PLACEMENT_OUTPUT_HELP}
  --relaxed      hierarchical topologies, balanced policy: each expert keeps one replica on
                 its group's node and the others may go to any node when that lowers the max
                 GPU load (the summary shows the share of load served off the group's node)
  --out FILE     write the placement there instead of stdout (sglang: a name ending in
                 .pt writes a torch file)
  --previous FILE
                 the placement the engine runs now (any placement file: phy2log or
                 physical_to_logical_map JSON/.pt, vllm-ascend, trtllm): rebalance from it,
                 moving few experts; the JSON gains "transfers" and metrics.migration
  --move-budget N|FRACTION|TIME
                 slots per layer that may change: an integer, or a fraction of the
                 slots [default: ${DEFAULT_MOVE_BUDGET}]; 0 keeps the previous placement; or a
                 time (150ms, 0.2s): the largest slot budget whose transfer schedule fits
                 it under the cost model (needs the cost flags)
  --min-gain F   change a layer only if its smooth max GPU load (the largest loads
                 and those just below it) drops by at least this fraction
                 [default: ${DEFAULT_MIN_GAIN}]
  --slot-gain F  a polishing swap must lower the smooth max GPU load by this fraction
                 of the mean GPU load per slot it changes [default: ${DEFAULT_SLOT_GAIN}];
                 smaller buys balance on future traffic with more transfers
  --transfers FILE
                 also write the transfer plan there as JSON (for any --output-format):
                 "transfers", "local" (copies within a GPU, no round) and "rounds" (in each,
                 every GPU sends and receives at most one expert; as few rounds as the busiest
                 GPU's copies); with the cost flags "roundMs" and "estimatedMs"
  --chunk-layers N
                 schedule the rounds chunk by chunk, N layers at a time, so an engine can
                 apply the rebalance a chunk at a time (more rounds in total)
${COST_HELP.replace(/^Cost model/, "Cost model, with --previous")}
${ROUTING_HELP}
                 The summary and metrics.locality give them for the plan (and --previous).
                 The plan is also made local: replicas of experts tokens choose together
                 are moved onto common nodes (fewer remote nodes per token) while every
                 layer's max GPU load stays within --locality-tolerance of the plan without
                 routing; metrics.localityPlan compares the two (docs/locality.md#placement).
                 With --previous the migrated plan is made local, each move priced in slots
                 changed (--locality-gain) within --move-budget
  --locality-tolerance F
                 relative rise of a layer's max GPU load the locality search may take
                 [default: ${DEFAULT_LOCALITY_TOLERANCE}]
  --locality-gain F
                 with --previous: a locality move must cut the layer's remote nodes per
                 token by F per slot it newly changes [default: ${DEFAULT_LOCALITY_GAIN}]
  -h, --help     this help

Example:
  eplb plan --loads examples/loads.json --replicas 16 --groups 4 --nodes 2 --gpus 8
  eplb plan --loads dump.pt --replicas 288 --groups 8 --nodes 4 --gpus 32 \\
    --output-format sglang --out init.json
  eplb plan --loads dump2.pt --replicas 288 --groups 8 --nodes 4 --gpus 32 \\
    --previous init.json --output-format sglang --out next.json --transfers moves.json
  eplb plan --loads dump2.pt --replicas 288 --groups 8 --nodes 4 --gpus 32 \\
    --previous init.json --model deepseek-v3 --hardware h800 --move-budget 30ms
`;
  },
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("plan", joinStepsValue(argv), {
      ...LOADS_OPTION,
      ...TOPOLOGY_OPTIONS,
      policy: { type: "string" },
      out: { type: "string" },
      ...LOADS_INPUT_OPTIONS,
      ...PLACEMENT_OUTPUT_OPTIONS,
      previous: { type: "string" },
      "move-budget": { type: "string" },
      "min-gain": { type: "string" },
      "slot-gain": { type: "string" },
      transfers: { type: "string" },
      "chunk-layers": { type: "string" },
      ...COST_OPTIONS,
      relaxed: { type: "boolean" },
      ...ROUTING_OPTIONS,
      "locality-tolerance": { type: "string" },
      "locality-gain": { type: "string" },
    });
    const paths = loadsPaths(flags);
    checkOutputPaths(flags, ctx);
    const { numReplicas, numGroups, numNodes, numGpus } = topologyFlags(flags);
    const policy = typeof flags.policy === "string" ? flags.policy : DEFAULT_POLICY;
    getPolicy(policy);
    const outputFormat = outputFormatFlag(flags);
    const migration = migrationFlags(flags);
    const cost = costFlags(flags, { requireCompute: false });
    const shapeWarning = hardwareShapeWarning(flags, numGpus / numNodes);
    if (shapeWarning) ctx.stderr(`warning: ${shapeWarning}\n`);
    const layerChunk =
      flags["chunk-layers"] === undefined ? undefined : integerFlag(flags, "chunk-layers", 1);
    const budgetMs = moveBudgetMsFlag(flags);
    if (budgetMs !== undefined && !cost) {
      throw new UsageError(
        `--move-budget ${flags["move-budget"]} is a time: it needs the cost flags (--model or --expert-bytes, with --hardware or --link-gbps)`,
      );
    }
    // vllm-ascend misroutes a device that holds an expert twice, so plan without any.
    if (outputFormat === "vllm-ascend") migration.distinctPerGpu = true;
    if (flags.relaxed) {
      if (policy === "deepseek")
        throw new UsageError("--relaxed needs a policy other than deepseek");
      migration.relaxedHierarchy = true;
    }
    const notes: LoadsNote[] = [];
    const source = readLoadsInput(paths, ctx.cwd, {
      ...loadsInputFlags(flags),
      onNote: (note) => notes.push(note),
    });
    const loads = source.loads;
    for (const n of notes)
      if (n.level === "warning")
        ctx.stderr(`warning: ${n.text}
`);
    firstLayerFromLoads(flags, notes);
    const routing = readRoutingFlag(flags, ctx.cwd, loads, (t) => ctx.stderr(t));
    if (routing) {
      // With a routing the plan is made local (docs/locality.md); from --previous each
      // locality move is priced in slots changed (--locality-gain).
      migration.routing = routing;
      if (flags["locality-tolerance"] !== undefined) {
        migration.localityTolerance = numberFlag(flags, "locality-tolerance", 0, 1, 0);
      }
      if (flags["locality-gain"] !== undefined) {
        if (flags.previous === undefined) throw new UsageError("--locality-gain needs --previous");
        migration.localityGain = numberFlag(flags, "locality-gain", 0, 1000, 0);
      }
    } else if (flags["locality-tolerance"] !== undefined || flags["locality-gain"] !== undefined) {
      const name = flags["locality-tolerance"] !== undefined ? "tolerance" : "gain";
      throw new UsageError(`--locality-${name} needs --routing`);
    }
    if (typeof flags.previous === "string") {
      migration.previous = readPlacementFile(flags.previous, ctx, {
        numExperts: loads.experts,
      });
    }
    const { result, metrics, schedule } = planScheduled(
      [loads, numReplicas, numGroups, numNodes, numGpus, policy, migration, routing],
      { model: cost, layerChunk, budgetMs },
    );
    if (routing) {
      // The CLI reads --previous as a typed Placement (readPlacementFile).
      const previous = migration.previous as Placement | undefined;
      metrics.locality = localityMetrics(
        routing,
        result.placement,
        { numGpus, numNodes },
        previous,
      );
    }
    // Timing goes to the stderr summary only: the same command twice writes the same bytes.
    const { timeMs: _timeMs, ...jsonMetrics } = metrics;
    let text: string | Uint8Array;
    const transfers = result.transfers && transferList(result.transfers, result.topology);
    if (transfers && outputFormat === "deepseek") {
      const { phy2log, log2phy, logcnt } = toReferencePlacement(result.placement);
      text = `${JSON.stringify({ phy2log, log2phy, logcnt, transfers, metrics: jsonMetrics })}\n`;
    } else {
      text = renderPlacement(result.placement, flags, { numGpus, metrics: jsonMetrics }, ctx);
    }
    writeResult(text, flags.out as string | undefined, ctx);
    if (typeof flags.transfers === "string" && schedule) {
      const file = transfersFile(result, schedule, cost, layerChunk);
      writeResult(`${JSON.stringify(file)}\n`, flags.transfers, ctx);
    }
    const read = notes.filter((n) => n.level === "info").map((n) => n.text);
    ctx.stderr(formatPlanSummary(metrics, [...describedSource(source), ...read]));
  },
};

/** The summary's line on the loads when it says more than the file name would: several files, or an SGLang dump. */
function describedSource(source: LoadSource): string[] {
  const telling = source.files > 1 || source.kinds.some((k) => k.startsWith("SGLang"));
  return telling ? [describeLoadSource(source)] : [];
}

/**
 * TensorRT-LLM keys layers by model layer index: loads read from its statistics folder know the
 * index of each row, so `--output-format trtllm` keys the plan the same way unless
 * `--first-layer` says otherwise; rows that are not consecutive model layers cannot be keyed
 * by a first layer and are refused rather than written under the wrong layers.
 */
function firstLayerFromLoads(flags: Flags, notes: readonly LoadsNote[]): void {
  const ids = notes.find((n) => n.layerIds)?.layerIds;
  if (!ids || outputFormatFlag(flags) !== "trtllm" || flags["first-layer"] !== undefined) return;
  if (ids[ids.length - 1] - ids[0] + 1 !== ids.length) {
    throw new UsageError(
      "--output-format trtllm keys consecutive layers from --first-layer, but the statistics' " +
        "MoE layers are not consecutive model layers; write another format",
    );
  }
  flags["first-layer"] = String(ids[0]);
}

function migrationFlags(flags: Flags): RebalanceOptions {
  // The JSON reports what a fresh plan would move even at its best relabelling.
  const options: RebalanceOptions = { compareRelabelled: true };
  const moveBudget = moveBudgetFlag(flags);
  if (moveBudget !== undefined) options.moveBudget = moveBudget;
  if (flags["min-gain"] !== undefined) options.minGain = numberFlag(flags, "min-gain", 0, 0.99, 0);
  if (flags["slot-gain"] !== undefined) options.slotGain = numberFlag(flags, "slot-gain", 0, 1, 0);
  if (flags.previous === undefined) {
    const names = ["move-budget", "min-gain", "slot-gain", "transfers", "chunk-layers"];
    for (const name of [...names, ...Object.keys(COST_OPTIONS)]) {
      if (flags[name] !== undefined) throw new UsageError(`--${name} needs --previous`);
    }
  }
  return options;
}

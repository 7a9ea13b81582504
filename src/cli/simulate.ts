import { DEFAULT_MOVE_BUDGET, DEFAULT_SLOT_GAIN } from "../core/migration/index.js";
import { DEFAULT_POLICY, policyNames } from "../core/policies/index.js";
import {
  DEFAULT_ESTIMATOR,
  ESTIMATOR_DESCRIPTIONS,
  ESTIMATOR_KINDS,
  type EstimatorKind,
  type LoadTrace,
} from "../core/traces/estimators.js";
import {
  type SimulationResult,
  type StrategyResult,
  simulate,
  type TraceSource,
} from "../core/traces/simulate.js";
import { FILE_FORMATS, type FileFormat, type ReadLoadsOptions } from "../io/read.js";
import { openSimulationTrace } from "../pipeline/read.js";
import {
  defaultSweepWorkers,
  MAX_SWEEP_CONFIGURATIONS,
  type PlainConfig,
  runSweep,
  strategySummary,
  sweepGrid,
} from "../pipeline/sweep.js";
import { sweepHtml } from "../pipeline/sweep-report.js";
import { checkSimulationConfig } from "../pipeline/validate.js";
import { simulationHtml } from "../report/simulation.js";
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
import { COST_HELP, COST_OPTIONS, costFlags } from "./cost-flags.js";
import { loadsPaths } from "./inputs.js";
import {
  checkOutputPaths,
  fixed4,
  percent2,
  round6,
  slotCount,
  textTable,
  writeResult,
} from "./output.js";
import { recommendTrace } from "./recommend.js";
import { COST_COLUMNS, costCells, costNotes, costSeries } from "./simulate-cost.js";
import {
  checkLocalityFlags,
  localityNotes,
  localitySetup,
  SIMULATE_LOCALITY_HELP,
  SIMULATE_LOCALITY_OPTIONS,
} from "./simulate-locality.js";
import {
  eplbLabel,
  openSimulationRouting,
  routingJudge,
  SIMULATE_ROUTING_HELP,
  type SimulationRouting,
} from "./simulate-routing.js";
import { formatSweepTable, parseSweeps, sweepCsv, sweepStartLine } from "./sweep.js";

/** A trace's dimensions, all a configuration is checked against. */
type TraceShape = Pick<LoadTrace, "steps" | "layers" | "experts">;

/** Checks a configuration against the trace before any work starts, so errors come first. */
function checkConfig(c: PlainConfig, trace: TraceShape): void {
  checkSimulationConfig(c, trace);
  if (c.interval >= trace.steps) {
    throw new UsageError(
      `--interval ${c.interval} must be smaller than the trace's ${trace.steps} steps, so at least one rebalance is judged`,
    );
  }
}

/** A `[#####-----] 45% label` line that redraws in place on a terminal. */
export class ProgressBar {
  private last = 0;
  constructor(
    private readonly ctx: CliContext,
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    if (!this.ctx.stderrIsTTY) return;
    const now = Date.now();
    if (done < total && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((done / Math.max(1, total)) * width);
    const pct = Math.floor((done / Math.max(1, total)) * 100);
    this.ctx.stderr(
      `\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(pct).padStart(3)}% ${this.label} ${done}/${total}`,
    );
  }

  done(): void {
    if (this.ctx.stderrIsTTY) this.ctx.stderr("\r\x1b[K");
  }
}

function describeConfig(r: SimulationResult): string {
  const e = r.estimator;
  const est =
    e.kind === "ema"
      ? `ema, half-life ${e.halfLife}`
      : e.kind === "meanstd"
        ? `meanstd, k ${e.k}, ${e.slices} slices`
        : e.kind;
  const relaxed = r.rebalanceOptions.relaxedHierarchy === true ? ", relaxed hierarchy" : "";
  return `rebalance every ${r.interval} steps from the last ${r.window} (estimator ${est}), policy ${r.policy}${relaxed}${r.fromPrevious ? " from the previous placement" : " from scratch"}`;
}

/**
 * The readable summary of one simulation: the setup, then one row per strategy.
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const config = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const table = formatSimulationTable(simulate(trace, config), "trace.npy");
 * table.split("\n")[0]; // "eplb simulate: trace.npy: 200 steps x 2 layers x 16 experts"
 * table.includes("deepseek re-planning (window mean)"); // true: the baselines' rows follow eplb's
 * ```
 */
export function formatSimulationTable(r: SimulationResult, traceName: string): string {
  const t = r.topology;
  const rows: string[][] = [];
  // Only a relaxed hierarchy serves load off its group's node: show the column when it does.
  const showOff = [r.eplb, ...Object.values(r.baselines)].some((s) => s && s.offNodeShare > 0);
  const priced = r.eplb.cost !== undefined;
  const add = (name: string, s: StrategyResult | undefined) => {
    if (!s) return;
    const row = [
      name,
      fixed4(s.meanRealizedBalancedness),
      fixed4(s.worstRealizedBalancedness),
      slotCount(s.movedSlotsPerRebalance),
      percent2(s.movedSlotsFraction),
    ];
    if (showOff) row.push(percent2(s.offNodeShare));
    if (priced) row.push(...costCells(s, r));
    rows.push(row);
  };
  add(eplbLabel(r), r.eplb);
  add("deepseek re-planning (window mean)", r.baselines.deepseek);
  add(`oracle (${r.policy} on the judged steps)`, r.baselines.oracle);
  add("no balancing (experts in order)", r.baselines.none);
  add("first placement kept (no rebalancing)", r.baselines.static);
  return [
    `eplb simulate: ${traceName}: ${r.steps} steps x ${r.layers} layers x ${r.experts} experts`,
    `  ${t.numReplicas} slots on ${t.numGpus} GPUs in ${t.numNodes} node${t.numNodes > 1 ? "s" : ""}, ${t.numGroups} group${t.numGroups > 1 ? "s" : ""} (${t.hierarchical ? "hierarchical" : "global"})`,
    `  ${describeConfig(r)}`,
    `  judged steps ${r.firstJudgedStep}..${r.steps - 1} (${r.judgedSteps}), ${r.rebalanceSteps.length} rebalances`,
    "",
    textTable(
      [
        "strategy",
        "balancedness",
        "worst step",
        "slots moved/rebalance",
        "moved",
        ...(showOff ? ["off node"] : []),
        ...(priced ? COST_COLUMNS : []),
      ],
      rows,
    ),
    "",
    "balancedness = mean / max GPU load per layer, averaged over layers, then over judged steps;",
    ...(r.baselines.deepseek
      ? [
          `deepseek re-planning = DeepSeek's EPLB from scratch every ${r.interval} steps on the mean load of the last ${r.window}, as engines run it;`,
        ]
      : []),
    `slots moved = slots whose expert changed, per rebalance after the first (of ${r.layers * t.numReplicas})${showOff ? ";\noff node = share of the load served off its group's home node (relaxed hierarchy)" : ""}${priced ? ";" : "."}`,
    ...(priced ? costNotes(r) : []),
    "",
  ].join("\n");
}

/**
 * The `--json` object of one simulation: the configuration, its summary figures at the top
 * level (`meanRealizedBalancedness`, `movedSlotsPerRebalance`, ...), the baselines, and the
 * per-step series (balancedness of every judged step per strategy, slots moved per rebalance).
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const config = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const json = simulationJson(simulate(trace, config), "trace.npy");
 * json.meanRealizedBalancedness; // 0.8493...
 * json.trace; // { file: "trace.npy", steps: 200, layers: 2, experts: 16 }
 * ```
 */
export function simulationJson(r: SimulationResult, traceName: string): Record<string, unknown> {
  const strategies = { eplb: r.eplb, ...r.baselines };
  const balancedness: Record<string, number[]> = {};
  const movedSlots: Record<string, number[]> = {};
  for (const [name, s] of Object.entries(strategies)) {
    if (!s) continue;
    balancedness[name] = Array.from(s.balancedness, round6);
    if (name !== "none") movedSlots[name] = Array.from(s.movedSlots);
  }
  const t = r.topology;
  return {
    trace: { file: traceName, steps: r.steps, layers: r.layers, experts: r.experts },
    config: {
      replicas: t.numReplicas,
      groups: t.numGroups,
      nodes: t.numNodes,
      gpus: t.numGpus,
      interval: r.interval,
      window: r.window,
      policy: r.policy,
      estimator: r.estimator,
      baselineEstimator: r.baselineEstimator,
      fromPrevious: r.fromPrevious,
      rebalanceOptions: r.rebalanceOptions,
      ...(r.cost
        ? { cost: r.cost.model, costGate: r.cost.gate, costGateIntervals: r.cost.gateIntervals }
        : {}),
    },
    ...strategySummary(r.eplb),
    rebalances: r.rebalanceSteps.length,
    firstJudgedStep: r.firstJudgedStep,
    judgedSteps: r.judgedSteps,
    baselines: Object.fromEntries(
      Object.entries(r.baselines).map(([k, s]) => [k, s ? strategySummary(s) : s]),
    ),
    series: {
      firstStep: r.firstJudgedStep,
      rebalanceSteps: r.rebalanceSteps,
      balancedness,
      movedSlots,
      ...(r.cost ? { transferMs: costSeries(strategies) } : {}),
    },
  };
}

function stringFlag(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
}

/** The `--format` flag, checked. */
function formatFlag(flags: Flags): FileFormat | undefined {
  const format = stringFlag(flags, "format");
  if (format !== undefined && !(FILE_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      `--format (${JSON.stringify(format)}) must be one of ${FILE_FORMATS.join(", ")}`,
    );
  }
  return format as FileFormat | undefined;
}

/** The trace readers' options from the flags: format, dict key, step slice, slot placement. */
function traceReadOptions(flags: Flags): ReadLoadsOptions {
  return {
    format: formatFlag(flags),
    key: stringFlag(flags, "key"),
    steps: stringFlag(flags, "steps"),
    slotPlacement: stringFlag(flags, "slot-placement"),
  };
}

/**
 * The configuration the flags give (the cost model too), checked against the trace.
 *
 * @example
 * ```ts
 * baseConfig({ replicas: "16", gpus: "4", interval: "10" }, { steps: 100, layers: 2, experts: 8 }).window; // 10
 * ```
 */
export function baseConfig(flags: Flags, trace: TraceShape): PlainConfig {
  const { numReplicas, numGroups, numNodes, numGpus } = topologyFlags(flags);
  const interval = integerFlag(flags, "interval", 1);
  const window = integerFlag(flags, "window", 1, interval);
  const estimator = stringFlag(flags, "estimator") ?? DEFAULT_ESTIMATOR;
  if (!(ESTIMATOR_KINDS as readonly string[]).includes(estimator)) {
    throw new UsageError(
      `--estimator (${JSON.stringify(estimator)}) must be one of ${ESTIMATOR_KINDS.join(", ")}`,
    );
  }
  const policy = stringFlag(flags, "policy") ?? DEFAULT_POLICY;
  const rebalanceOptions: Record<string, unknown> = {};
  if (flags["move-budget"] !== undefined) {
    rebalanceOptions.moveBudget = numberFlag(flags, "move-budget", 0, Number.MAX_SAFE_INTEGER, 0);
  }
  if (flags["min-gain"] !== undefined) {
    rebalanceOptions.minGain = numberFlag(flags, "min-gain", 0, 1, 0);
  }
  if (flags.tolerance !== undefined) {
    rebalanceOptions.tolerance = numberFlag(flags, "tolerance", 0, 1, 0);
  }
  if (flags["slot-gain"] !== undefined) {
    rebalanceOptions.slotGain = numberFlag(flags, "slot-gain", 0, 1, 0);
  }
  if (flags.relaxed === true) {
    if (policy === "deepseek") throw new UsageError("--relaxed needs a policy other than deepseek");
    rebalanceOptions.relaxedHierarchy = true;
  }
  const config: PlainConfig = {
    numReplicas,
    numGroups,
    numNodes,
    numGpus,
    interval,
    window,
    policy,
    estimator: estimator as EstimatorKind,
    fromPrevious: flags.fresh !== true,
    rebalanceOptions,
    baselines: flags["no-baselines"] !== true,
  };
  if (flags["half-life"] !== undefined) {
    config.halfLife = numberFlag(flags, "half-life", Number.MIN_VALUE, Number.MAX_VALUE, 1);
  }
  if (flags.k !== undefined) config.k = numberFlag(flags, "k", -100, 100, 1);
  if (flags.slices !== undefined) config.slices = integerFlag(flags, "slices", 1);
  const cost = costFlags(flags);
  if (cost) config.cost = cost;
  if (flags["no-cost-gate"] === true) {
    if (!cost) throw new UsageError("--no-cost-gate needs cost flags (see --help)");
    config.costGate = false;
  }
  if (flags["gate-intervals"] !== undefined) {
    if (!cost) throw new UsageError("--gate-intervals needs cost flags (see --help)");
    config.costGateIntervals = numberFlag(flags, "gate-intervals", 1e-6, 1e6, 0);
  }
  checkConfig(config, trace);
  return config;
}

const OPTIONS = {
  trace: { type: "string", multiple: true },
  format: { type: "string" },
  steps: { type: "string" },
  key: { type: "string" },
  "slot-placement": { type: "string" },
  ...TOPOLOGY_OPTIONS,
  interval: { type: "string" },
  window: { type: "string" },
  policy: { type: "string" },
  estimator: { type: "string" },
  "half-life": { type: "string" },
  k: { type: "string" },
  slices: { type: "string" },
  fresh: { type: "boolean" },
  "move-budget": { type: "string" },
  "min-gain": { type: "string" },
  "slot-gain": { type: "string" },
  tolerance: { type: "string" },
  relaxed: { type: "boolean" },
  "no-baselines": { type: "boolean" },
  ...COST_OPTIONS,
  "no-cost-gate": { type: "boolean" },
  "gate-intervals": { type: "string" },
  recommend: { type: "boolean" },
  sweep: { type: "string", multiple: true },
  json: { type: "boolean" },
  csv: { type: "boolean" },
  workers: { type: "string" },
  out: { type: "string" },
  html: { type: "string" },
  routing: { type: "string" },
  ...SIMULATE_LOCALITY_OPTIONS,
} as const;

/** `--steps -100:` is a value, not a flag: glue it to its flag before parsing. */
function joinSteps(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === "--steps" && next !== undefined && /^-\d*(:-?\d*){0,2}$/.test(next)) {
      out.push(`--steps=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}

export const simulateCommand: CliCommand = {
  name: "simulate",
  summary: "replay a load trace: realised balance and slot moves of a rebalancing setup",
  get help() {
    return `Usage: eplb simulate --trace FILE|DIR [--trace FILE ...] --replicas N --gpus N [--groups N] [--nodes N]
                     --interval N [--window N] [--policy NAME] [--estimator KIND]
                     [--json | --sweep NAME=V1,V2,... [--csv | --json]]

Replays a load trace [steps, layers, experts] as an engine running EPLB would: every
--interval steps the loads of the last --window steps are estimated, the policy rebalances
(from the previous placement), and every following step is judged by its realised
balancedness (mean / max GPU load, tokens split evenly among an expert's replicas). Compared
with no balancing, deepseek re-planning from scratch on the window's mean load (what engines
run today), and an oracle that plans on the very steps it is judged on. Prints a table on
stdout (or --json).

Options:
  --trace FILE      the trace: .npy (hotness[time, layer, expert]), JSON
                    {"logical_count": [[[...]]]}, ...; see eplb synth for a synthetic one.
                    SGLang per_pass / per_token dumps replay one step per forward pass;
                    repeat --trace (one dump per rank) or give a folder of them to sum the
                    ranks pass by pass. SGLang stat dumps are refused: their ring buffer
                    rows are not in time order
  --format F        force the trace file's format: ${FILE_FORMATS.join(", ")}
  --steps a:b       replay only these steps (a Python slice: "0:5000", "-2000:")
  --key NAME        the dict entry (or safetensors tensor) holding the trace
                    [default: logical_count, weight, loads, hotness, counts]
  --slot-placement FILE  the trace counts per physical slot (vLLM's expert_load_window
                    [steps, layers, slots]): fold it into experts with this placement
${TOPOLOGY_HELP}
  --interval N      steps between two rebalances (the first after N steps)
  --window N        steps of history each estimate uses [default: --interval]
  --policy NAME     one of: ${policyNames()
    .map((n) => `${n}${n === DEFAULT_POLICY ? " (default)" : ""}`)
    .join(", ")}
  --estimator KIND  how loads are estimated from the window [default ${DEFAULT_ESTIMATOR}]:
${ESTIMATOR_KINDS.map((k) => `                      ${k}: ${ESTIMATOR_DESCRIPTIONS[k]}`).join("\n")}
  --half-life N     ema: half-life in steps [default window / 4]
  --k F             meanstd: standard deviations added [default 1]
  --slices N        meanstd: time slices of the window [default 4]
  --fresh           re-plan from scratch at every rebalance instead of from the previous placement
  --move-budget N   slots per layer a rebalance may change (or a fraction in (0, 1) of them)
                    [default: ${DEFAULT_MOVE_BUDGET}]
  --min-gain F      gate: a layer changes only if its smooth max GPU load drops by this
                    fraction (lower it when rebalancing more often than every 100 steps)
  --tolerance F     first repair of a layer stops within this fraction of a fresh plan's max
  --slot-gain F     polish: a swap must lower the smooth max GPU load by this fraction of the
                    mean GPU load per slot it changes [default: ${DEFAULT_SLOT_GAIN}]; smaller
                    buys balance on future traffic with more moves
  --relaxed         hierarchical topologies, balanced policy: each expert keeps one replica on
                    its group's node, the others may go to any node (as eplb plan --relaxed);
                    the oracle plans relaxed too
  --no-baselines    skip the baselines (faster)
  --recommend       with cost flags: does rebalancing pay? Replays every interval of the
                    --interval list (default 10,25,50,100,200,500,1000,2000,5000 below the
                    trace's length) and --replicas list, and prints the setup with the least
                    time, the break-even interval, or plainly that rebalancing does not pay
  --no-cost-gate    with cost flags: carry out every rebalance eplb plans (by default a
                    rebalance or a layer whose expected saving is below its transfer time is
                    skipped, keeping the previous placement for it)
  --gate-intervals N  the gate's horizon: a change is expected to save MoE time over N
                    intervals [default 3; 1 = only until the next rebalance]

${COST_HELP.replace(/^Cost model/, "With cost flags the table and JSON gain each strategy's time: MoE ms per step,\ntransfer ms per rebalance, total, speed-up against no balancing and deepseek.\nCost model")}

  --json            print a JSON summary (meanRealizedBalancedness, movedSlotsPerRebalance,
                    baselines, per-step series) instead of the table
  --sweep NAME=V,.. vary interval, window, replicas, policy, estimator, previous (yes,no),
                    move-budget, min-gain, tolerance or slot-gain (repeatable: the grid of all
                    combinations, at most ${MAX_SWEEP_CONFIGURATIONS} configurations); one row
                    per configuration, --csv or --json on request;
                    * marks the Pareto front of balancedness against slots moved per step
  --csv             with --sweep: CSV instead of the table
  --workers N       worker threads for a sweep [default: the cores, when the sweep is large]
  --out FILE        write the output there instead of stdout
  --html FILE       also write an HTML report: balancedness over time, slots moved per
                    rebalance (or, with --sweep, the sweep as a chart), and the last placement
${SIMULATE_ROUTING_HELP}
${SIMULATE_LOCALITY_HELP}
  -h, --help        this help

Examples:
  eplb synth --steps 2000 --layers 58 --experts 256 --seed 1 --out trace.npy
  eplb simulate --trace trace.npy --replicas 288 --groups 8 --nodes 4 --gpus 32 --interval 100
  eplb simulate --trace trace.npy --replicas 288 --groups 8 --nodes 4 --gpus 32 --interval 100 \\
      --sweep interval=50,100,200 --sweep estimator=mean,ema --csv
  eplb simulate --trace trace.npy --replicas 288 --groups 8 --nodes 4 --gpus 32 --interval 100 \\
      --model deepseek-v3 --hardware h800
  eplb simulate --trace trace.npy --replicas 288,320 --groups 8 --nodes 4 --gpus 32 \\
      --model deepseek-v3 --hardware h800 --recommend
`;
  },
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("simulate", joinSteps(argv), OPTIONS);
    checkLocalityFlags(flags);
    const paths = loadsPaths(flags, "trace");
    const tracePath = paths.join(", ");
    checkOutputPaths(flags, ctx);
    const sweepSpecs = (flags.sweep as string[] | undefined) ?? [];
    if (flags.csv === true && sweepSpecs.length === 0) {
      throw new UsageError("--csv needs --sweep (a single run prints a table or --json)");
    }
    if (flags.csv === true && flags.json === true) {
      throw new UsageError("--csv and --json exclude each other");
    }
    const sweeps = parseSweeps(sweepSpecs);
    const recommend = flags.recommend === true;
    if (recommend && sweepSpecs.length > 0) {
      throw new UsageError(
        "--recommend runs its own sweep (of --interval and --replicas lists): drop --sweep",
      );
    }
    const workersFlag = flags.workers === undefined ? undefined : integerFlag(flags, "workers", 0);
    // A sweep's worker threads share one copy of the trace: read it whole.
    const opened = openSimulationTrace(paths, ctx.cwd, () => traceReadOptions(flags), {
      whole: Object.keys(sweeps).length > 0 || recommend,
      onWarning: (w) => ctx.stderr(`warning: ${w}\n`),
    });
    let routing: SimulationRouting | null = null;
    try {
      if (recommend) {
        if (flags.routing !== undefined) {
          throw new UsageError("--routing judges one run: it cannot be combined with --recommend");
        }
        if ("readStep" in opened.trace)
          throw new Error("--recommend needs the whole trace in memory");
        const whole = opened.trace;
        await recommendTrace(
          tracePath,
          whole,
          flags,
          ctx,
          workersFlag,
          (f) => baseConfig(f, whole),
          new ProgressBar(ctx, "steps"),
        );
      } else {
        routing = openSimulationRouting(flags, ctx.cwd, opened.trace);
        await simulateTrace(tracePath, opened.trace, flags, ctx, sweeps, workersFlag, routing);
      }
    } finally {
      routing?.close();
      opened.close();
    }
  },
};

async function simulateTrace(
  tracePath: string,
  source: LoadTrace | TraceSource,
  flags: Flags,
  ctx: CliContext,
  sweeps: ReturnType<typeof parseSweeps>,
  workersFlag: number | undefined,
  routing: SimulationRouting | null = null,
): Promise<void> {
  const out = stringFlag(flags, "out");
  if (Object.keys(sweeps).length > 0) {
    // openSimulationTrace read it whole for a sweep: a stream here would be a bug of ours.
    if ("readStep" in source) throw new Error("a sweep needs the whole trace in memory");
    const trace = source;
    const base = baseConfig(flags, trace);
    const grid = sweepGrid(base, sweeps);
    for (const c of grid) checkConfig(c, trace);
    const workers = workersFlag ?? defaultSweepWorkers(grid.length, trace);
    ctx.stderr(sweepStartLine(grid.length, trace, workers, flags["no-baselines"] === true));
    const bar = new ProgressBar(ctx, "steps");
    const rows = await runSweep(trace, grid, workers, (d, t) => bar.update(d, t));
    bar.done();
    const text =
      flags.json === true
        ? `${JSON.stringify(rows, null, 2)}\n`
        : flags.csv === true
          ? sweepCsv(rows)
          : formatSweepTable(rows, tracePath);
    writeResult(text, out, ctx);
    const html = stringFlag(flags, "html");
    if (html !== undefined) writeResult(sweepHtml(trace, base, rows, tracePath), html, ctx);
    return;
  }

  const trace = source;
  const base = baseConfig(flags, trace);
  const bar = new ProgressBar(ctx, "steps");
  const start = performance.now();
  const judge = routing && routingJudge(routing, base, trace.experts, trace.steps - base.interval);
  const locality = localitySetup(flags, routing);
  if (locality && base.cost && base.costGate !== false) {
    // The gate prices balance only (no dispatch time): it would undo most locality moves.
    throw new UsageError(
      "--locality with cost flags needs --no-cost-gate: the gate prices balance, not dispatch, and would undo locality moves",
    );
  }
  const notes = locality && localityNotes(locality, base.window);
  const result = simulate(trace, {
    ...base,
    onProgress: (d, t) => bar.update(d, t),
    ...(judge ? { onJudged: judge.onJudged } : {}),
    ...(locality ? { localityPlanning: locality.planning } : {}),
  });
  const timeMs = performance.now() - start;
  bar.done();
  if (
    locality &&
    result.topology.hierarchical &&
    base.rebalanceOptions?.relaxedHierarchy !== true
  ) {
    ctx.stderr(
      "warning: --locality under a strict hierarchy changes no plan (groups fix each expert's node): add --relaxed\n",
    );
  }
  // The time goes to stderr only: the same command twice writes the same bytes.
  if (flags.json === true) {
    const json = simulationJson(result, tracePath);
    if (judge) json.locality = judge.json();
    if (notes) (json.config as Record<string, unknown>).locality = notes.json;
    writeResult(`${JSON.stringify(json)}\n`, out, ctx);
  } else {
    const table = formatSimulationTable(result, tracePath);
    const routingTable = judge ? `\n${judge.table(result)}${notes ? `${notes.line}\n` : ""}` : "";
    writeResult(`${table}${routingTable}`, out, ctx);
  }
  ctx.stderr(`eplb simulate: ${(timeMs / 1000).toFixed(2)} s\n`);
  const html = stringFlag(flags, "html");
  if (html !== undefined) writeResult(simulationHtml(result, tracePath), html, ctx);
}

import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { Worker } from "node:worker_threads";
import {
  DEFAULT_ESTIMATOR,
  ESTIMATOR_DESCRIPTIONS,
  ESTIMATOR_KINDS,
  type EstimatorKind,
  type LoadTrace,
  resolveEstimatorSpec,
} from "../core/estimators.js";
import { DEFAULT_MOVE_BUDGET, DEFAULT_SLOT_GAIN } from "../core/migration.js";
import { DEFAULT_POLICY, getPolicy, policyNames } from "../core/policies/index.js";
import { rebalanceExperts } from "../core/rebalance.js";
import {
  type SimulationConfig,
  type SimulationResult,
  type StrategyResult,
  simulate,
} from "../core/simulate.js";
import { makeTopology } from "../core/topology.js";
import { type NpyTraceSource, openNpyTrace, readAllSteps } from "../io/npy-stream.js";
import { FILE_FORMATS, type FileFormat, readTrace } from "../io/read.js";
import { defaultSections, htmlReport } from "../report/html.js";
import { buildReportModel } from "../report/model.js";
import { simulationSection, sweepSection } from "../report/simulation.js";
import {
  type Flags,
  integerFlag,
  numberFlag,
  parseFlags,
  requireString,
  TOPOLOGY_HELP,
  TOPOLOGY_OPTIONS,
  topologyFlags,
} from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import { writeResult } from "./output.js";

/** The parameters a `--sweep` may vary. */
export const SWEEP_NAMES = [
  "interval",
  "window",
  "replicas",
  "policy",
  "estimator",
  "previous",
  "move-budget",
  "min-gain",
  "tolerance",
  "slot-gain",
] as const;
export type SweepName = (typeof SWEEP_NAMES)[number];

/** Sweep names that set a `rebalanceExperts` migration option, and the option each sets. */
const OPTION_SWEEPS = {
  "move-budget": "moveBudget",
  "min-gain": "minGain",
  tolerance: "tolerance",
  "slot-gain": "slotGain",
} as const;
type OptionSweep = keyof typeof OPTION_SWEEPS;
const isOptionSweep = (name: string): name is OptionSweep => Object.hasOwn(OPTION_SWEEPS, name);

/** A trace's dimensions, all a configuration is checked against. */
type TraceShape = Pick<LoadTrace, "steps" | "layers" | "experts">;

/** A simulation configuration without callbacks, as sent to worker threads. */
export type PlainConfig = Omit<SimulationConfig, "onProgress">;

/** A strategy's figures without its per-step series. */
export interface StrategySummary {
  meanRealizedBalancedness: number;
  worstRealizedBalancedness: number;
  movedSlotsPerRebalance: number;
  movedSlotsFraction: number;
  offNodeShare: number;
}

/** One configuration's outcome: what `--sweep` prints per row. */
export interface SweepRow extends StrategySummary {
  interval: number;
  window: number;
  replicas: number;
  policy: string;
  estimator: EstimatorKind;
  fromPrevious: boolean;
  /** Move budget, minimum gain, tolerance, slot gain given to the rebalancing (null: default). */
  moveBudget: number | null;
  minGain: number | null;
  tolerance: number | null;
  slotGain: number | null;
  rebalances: number;
  /** Slots moved per step: per rebalance over the interval, comparable across intervals. */
  movedSlotsPerStep: number;
  /**
   * On the sweep's Pareto front of balancedness against slots moved per step: no other row
   * realises at least as much balance with at most as many moves, one of them strictly.
   */
  paretoOptimal: boolean;
  baselines: Partial<Record<"none" | "deepseek" | "oracle", StrategySummary>>;
}

function strategySummary(s: StrategyResult): StrategySummary {
  return {
    meanRealizedBalancedness: s.meanRealizedBalancedness,
    worstRealizedBalancedness: s.worstRealizedBalancedness,
    movedSlotsPerRebalance: s.movedSlotsPerRebalance,
    movedSlotsFraction: s.movedSlotsFraction,
    offNodeShare: s.offNodeShare,
  };
}

function optionNumber(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

/**
 * The value of a swept parameter in a row, as the sweep's labels show it.
 *
 * @example
 * ```ts
 * sweepValue(row, "previous"); // "yes"
 * sweepValue(row, "move-budget"); // "0.1" (or "default")
 * ```
 */
export function sweepValue(r: SweepRow, name: SweepName): string {
  const opt = (v: number | null) => (v === null ? "default" : String(v));
  switch (name) {
    case "previous":
      return r.fromPrevious ? "yes" : "no";
    case "move-budget":
    case "min-gain":
    case "tolerance":
    case "slot-gain":
      return opt(r[OPTION_SWEEPS[name]]);
    default:
      return String(r[name]);
  }
}

/**
 * The summary of one simulation, as one sweep row.
 *
 * @example
 * ```ts
 * sweepRow(simulate(trace, config)).meanRealizedBalancedness; // 0.93...
 * ```
 */
export function sweepRow(r: SimulationResult): SweepRow {
  const baselines: SweepRow["baselines"] = {};
  for (const [name, s] of Object.entries(r.baselines)) {
    if (s) baselines[name as keyof SweepRow["baselines"]] = strategySummary(s);
  }
  return {
    interval: r.interval,
    window: r.window,
    replicas: r.topology.numReplicas,
    policy: r.policy,
    estimator: r.estimator.kind,
    fromPrevious: r.fromPrevious,
    moveBudget: optionNumber(r.rebalanceOptions.moveBudget),
    minGain: optionNumber(r.rebalanceOptions.minGain),
    tolerance: optionNumber(r.rebalanceOptions.tolerance),
    slotGain: optionNumber(r.rebalanceOptions.slotGain),
    rebalances: r.rebalanceSteps.length,
    ...strategySummary(r.eplb),
    movedSlotsPerStep: r.eplb.movedSlotsPerRebalance / r.interval,
    paretoOptimal: false,
    baselines,
  };
}

/**
 * Parses repeated `--sweep name=v1,v2` flags into value lists (numbers for interval, window and
 * replicas; names for policy and estimator). A name given twice is a mistake.
 *
 * @example
 * ```ts
 * parseSweeps(["interval=50,100", "policy=deepseek"]);
 * // { interval: [50, 100], policy: ["deepseek"] }
 * parseSweeps(["gpus=8"]);
 * // throws UsageError: --sweep gpus=8: the name must be one of interval, window, replicas, policy, estimator
 * ```
 */
export function parseSweeps(specs: readonly string[]): Partial<Record<SweepName, string[]>> {
  const out: Partial<Record<SweepName, string[]>> = {};
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const name = (eq < 0 ? spec : spec.slice(0, eq)).trim();
    if (!(SWEEP_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(
        `--sweep ${spec}: the name must be one of ${SWEEP_NAMES.join(", ")} (as in --sweep interval=50,100)`,
      );
    }
    const values = (eq < 0 ? "" : spec.slice(eq + 1))
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
    if (values.length === 0)
      throw new UsageError(`--sweep ${spec}: give values, as in ${name}=a,b`);
    if (out[name as SweepName]) throw new UsageError(`--sweep ${name} is given twice`);
    for (const v of values) {
      if (name === "previous") {
        if (v !== "yes" && v !== "no") {
          throw new UsageError(`--sweep ${spec}: ${JSON.stringify(v)} must be yes or no`);
        }
      } else if (isOptionSweep(name)) {
        if (!/^\d+(\.\d*)?$|^\.\d+$|^Infinity$/.test(v)) {
          throw new UsageError(`--sweep ${spec}: ${JSON.stringify(v)} must be a number >= 0`);
        }
      } else if (name === "interval" || name === "window" || name === "replicas") {
        if (!/^\d+$/.test(v) || Number(v) < 1) {
          throw new UsageError(`--sweep ${spec}: ${JSON.stringify(v)} must be an integer >= 1`);
        }
      } else if (name === "estimator" && !(ESTIMATOR_KINDS as readonly string[]).includes(v)) {
        throw new UsageError(
          `--sweep ${spec}: estimator ${JSON.stringify(v)} must be one of ${ESTIMATOR_KINDS.join(", ")}`,
        );
      } else if (name === "policy" && !policyNames().includes(v)) {
        throw new UsageError(
          `--sweep ${spec}: policy ${JSON.stringify(v)} must be one of ${policyNames().join(", ")}`,
        );
      }
    }
    out[name as SweepName] = values;
  }
  return out;
}

/**
 * Every configuration of the grid: the base with each combination of swept values (the first
 * swept name varies slowest).
 *
 * @example
 * ```ts
 * sweepGrid(base, { interval: ["50", "100"], estimator: ["mean", "ema"] }).length; // 4
 * ```
 */
export function sweepGrid(
  base: PlainConfig,
  sweeps: Partial<Record<SweepName, string[]>>,
): PlainConfig[] {
  let grid: PlainConfig[] = [{ ...base }];
  for (const [name, values] of Object.entries(sweeps) as Array<[SweepName, string[]]>) {
    const next: PlainConfig[] = [];
    for (const config of grid) {
      for (const v of values) {
        const c = { ...config };
        if (name === "interval") c.interval = Number(v);
        else if (name === "window") c.window = Number(v);
        else if (name === "replicas") c.numReplicas = Number(v);
        else if (name === "policy") c.policy = v;
        else if (name === "estimator") c.estimator = v as EstimatorKind;
        else if (name === "previous") c.fromPrevious = v === "yes";
        else c.rebalanceOptions = { ...c.rebalanceOptions, [OPTION_SWEEPS[name]]: Number(v) };
        next.push(c);
      }
    }
    grid = next;
  }
  return grid;
}

/** Checks a configuration against the trace before any work starts, so errors come first. */
function checkConfig(c: PlainConfig, trace: TraceShape): void {
  makeTopology(trace.experts, c.numReplicas, c.numGroups, c.numNodes, c.numGpus);
  getPolicy(c.policy ?? DEFAULT_POLICY);
  resolveEstimatorSpec({
    kind: c.estimator ?? DEFAULT_ESTIMATOR,
    window: c.window,
    halfLife: c.halfLife,
    k: c.k,
    slices: c.slices,
  });
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

/** Trace data as worker threads receive it: one shared buffer, never copied per worker. */
export interface SharedTrace {
  steps: number;
  layers: number;
  experts: number;
  buffer: SharedArrayBuffer;
  /** Element type in the buffer: counts travel as int32 (half of float64's memory). */
  dtype: "int32" | "float32" | "float64";
}

function shareTrace(trace: LoadTrace): SharedTrace {
  const { data } = trace;
  let dtype: SharedTrace["dtype"] = data instanceof Float32Array ? "float32" : "int32";
  if (dtype === "int32" && !(data instanceof Int32Array)) {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if ((v | 0) !== v) {
        dtype = "float64";
        break;
      }
    }
  }
  const bytes = dtype === "float64" ? 8 : 4;
  const buffer = new SharedArrayBuffer(data.length * bytes);
  sharedView({ ...trace, buffer, dtype }).set(data);
  return { steps: trace.steps, layers: trace.layers, experts: trace.experts, buffer, dtype };
}

/**
 * The typed view of a {@link SharedTrace}'s buffer.
 *
 * @example
 * ```ts
 * sharedView(shared).length; // steps * layers * experts
 * ```
 */
export function sharedView(
  t: Pick<SharedTrace, "buffer" | "dtype">,
): Int32Array | Float32Array | Float64Array {
  return t.dtype === "int32"
    ? new Int32Array(t.buffer)
    : t.dtype === "float32"
      ? new Float32Array(t.buffer)
      : new Float64Array(t.buffer);
}

/**
 * Marks the rows on the Pareto front of realised balancedness (higher is better) against slots
 * moved per step (lower is better): the configurations worth choosing between, whatever weight
 * a deployment gives weight transfers. O(rows^2); sweeps are small.
 *
 * @example
 * ```ts
 * markParetoFront(rows).filter((r) => r.paretoOptimal).map((r) => r.interval); // [25, 100, 200]
 * ```
 */
export function markParetoFront<T extends SweepRow>(rows: T[]): T[] {
  for (const r of rows) {
    r.paretoOptimal = !rows.some(
      (o) =>
        o.meanRealizedBalancedness >= r.meanRealizedBalancedness &&
        o.movedSlotsPerStep <= r.movedSlotsPerStep &&
        (o.meanRealizedBalancedness > r.meanRealizedBalancedness ||
          o.movedSlotsPerStep < r.movedSlotsPerStep),
    );
  }
  return rows;
}

/**
 * Runs every configuration of a sweep, on `workers` worker threads sharing one copy of the trace
 * (in this thread when `workers <= 1` or there is one configuration). Rows come back in grid
 * order, without per-step series.
 *
 * @example
 * ```ts
 * const rows = await runSweep(trace, sweepGrid(base, { interval: ["50", "100"] }), 2, () => {});
 * rows.map((r) => r.meanRealizedBalancedness); // [0.93..., 0.92...]
 * ```
 */
export async function runSweep(
  trace: LoadTrace,
  grid: PlainConfig[],
  workers: number,
  onProgress: (done: number, total: number) => void,
): Promise<SweepRow[]> {
  const total = grid.length * trace.steps;
  if (workers <= 1 || grid.length === 1) {
    const rows: SweepRow[] = [];
    for (let i = 0; i < grid.length; i++) {
      const r = simulate(trace, {
        ...grid[i],
        series: false,
        onProgress: (d) => onProgress(i * trace.steps + d, total),
      });
      rows.push(sweepRow(r));
    }
    return markParetoFront(rows);
  }
  const shared = shareTrace(trace);
  const rows: SweepRow[] = new Array(grid.length);
  const progress = new Float64Array(grid.length);
  let next = 0;
  const threads: Worker[] = [];
  const pool = Array.from({ length: Math.min(workers, grid.length) }, () => {
    const worker = new Worker(new URL("./simulate-worker.js", import.meta.url), {
      workerData: shared,
    });
    threads.push(worker);
    return new Promise<void>((resolveWorker, reject) => {
      const feed = () => {
        if (next >= grid.length) {
          void worker.terminate();
          resolveWorker();
          return;
        }
        const id = next++;
        worker.postMessage({ id, config: grid[id] });
      };
      worker.on("message", (m: WorkerReply) => {
        if (m.type === "progress") {
          progress[m.id] = m.done;
          onProgress(
            progress.reduce((a, b) => a + b, 0),
            total,
          );
        } else if (m.type === "done") {
          rows[m.id] = m.row;
          progress[m.id] = trace.steps;
          feed();
        } else {
          void worker.terminate();
          reject(new Error(`simulation worker failed: ${m.message}`));
        }
      });
      worker.on("error", reject);
      feed();
    });
  });
  try {
    await Promise.all(pool);
  } catch (error) {
    // One failure ends the sweep: stop the other threads rather than let them finish the grid.
    for (const w of threads) void w.terminate();
    throw error;
  }
  return markParetoFront(rows);
}

/** Messages a simulation worker sends back. */
export type WorkerReply =
  | { type: "progress"; id: number; done: number }
  | { type: "done"; id: number; row: SweepRow }
  | { type: "error"; id: number; message: string };

/** Fixed-width text table: header row, then rows; columns padded to their widest cell. */
function table(header: string[], rows: string[][], alignLeft = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < alignLeft ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const f4 = (x: number) => x.toFixed(4);
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const moves = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

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
 * formatSimulationTable(result, "trace.npy");
 * // "eplb simulate: trace.npy: 1000 steps x 58 layers x 256 experts\n..."
 * ```
 */
export function formatSimulationTable(r: SimulationResult, traceName: string): string {
  const t = r.topology;
  const rows: string[][] = [];
  // Only a relaxed hierarchy serves load off its group's node: show the column when it does.
  const showOff = [r.eplb, ...Object.values(r.baselines)].some((s) => s && s.offNodeShare > 0);
  const add = (name: string, s: StrategyResult | undefined) => {
    if (!s) return;
    const row = [
      name,
      f4(s.meanRealizedBalancedness),
      f4(s.worstRealizedBalancedness),
      moves(s.movedSlotsPerRebalance),
      pct(s.movedSlotsFraction),
    ];
    if (showOff) row.push(pct(s.offNodeShare));
    rows.push(row);
  };
  add(`eplb (${r.policy}${r.fromPrevious ? ", from previous" : ""})`, r.eplb);
  add("deepseek re-planning (window mean)", r.baselines.deepseek);
  add(`oracle (${r.policy} on the judged steps)`, r.baselines.oracle);
  add("no balancing (experts in order)", r.baselines.none);
  return [
    `eplb simulate: ${traceName}: ${r.steps} steps x ${r.layers} layers x ${r.experts} experts`,
    `  ${t.numReplicas} slots on ${t.numGpus} GPUs in ${t.numNodes} node${t.numNodes > 1 ? "s" : ""}, ${t.numGroups} group${t.numGroups > 1 ? "s" : ""} (${t.hierarchical ? "hierarchical" : "global"})`,
    `  ${describeConfig(r)}`,
    `  judged steps ${r.firstJudgedStep}..${r.steps - 1} (${r.judgedSteps}), ${r.rebalanceSteps.length} rebalances`,
    "",
    table(
      [
        "strategy",
        "balancedness",
        "worst step",
        "slots moved/rebalance",
        "moved",
        ...(showOff ? ["off node"] : []),
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
    `slots moved = slots whose expert changed, per rebalance after the first (of ${r.layers * t.numReplicas})${showOff ? ";\noff node = share of the load served off its group's home node (relaxed hierarchy)" : ""}.`,
    "",
  ].join("\n");
}

const round6 = (x: number) => Number(x.toPrecision(6));

/**
 * The `--json` object of one simulation: the configuration, its summary figures at the top
 * level (`meanRealizedBalancedness`, `movedSlotsPerRebalance`, ...), the baselines, and the
 * per-step series (balancedness of every judged step per strategy, slots moved per rebalance).
 *
 * @example
 * ```ts
 * simulationJson(result, "trace.npy", 812).meanRealizedBalancedness; // 0.93...
 * ```
 */
export function simulationJson(
  r: SimulationResult,
  traceName: string,
  timeMs: number,
): Record<string, unknown> {
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
    },
    timeMs: Math.round(timeMs),
  };
}

const CSV_HEADER = [
  "interval",
  "window",
  "replicas",
  "policy",
  "estimator",
  "from_previous",
  "move_budget",
  "min_gain",
  "tolerance",
  "slot_gain",
  "balancedness",
  "worst_step",
  "moved_per_rebalance",
  "moved_fraction",
  "deepseek_balancedness",
  "deepseek_moved_per_rebalance",
  "oracle_balancedness",
  "none_balancedness",
  "off_node_share",
  "moved_per_step",
  "pareto",
];

function rowCells(r: SweepRow, digits: (x: number) => string): string[] {
  const b = r.baselines;
  const opt = (x: number | undefined, f: (x: number) => string) => (x === undefined ? "" : f(x));
  return [
    String(r.interval),
    String(r.window),
    String(r.replicas),
    r.policy,
    r.estimator,
    String(r.fromPrevious),
    r.moveBudget === null ? "" : String(r.moveBudget),
    r.minGain === null ? "" : String(r.minGain),
    r.tolerance === null ? "" : String(r.tolerance),
    r.slotGain === null ? "" : String(r.slotGain),
    digits(r.meanRealizedBalancedness),
    digits(r.worstRealizedBalancedness),
    moves(r.movedSlotsPerRebalance),
    digits(r.movedSlotsFraction),
    opt(b.deepseek?.meanRealizedBalancedness, digits),
    opt(b.deepseek?.movedSlotsPerRebalance, moves),
    opt(b.oracle?.meanRealizedBalancedness, digits),
    opt(b.none?.meanRealizedBalancedness, digits),
    digits(r.offNodeShare),
    moves(r.movedSlotsPerStep),
    String(r.paretoOptimal),
  ];
}

/**
 * Sweep rows as CSV (one header line, one line per configuration).
 *
 * @example
 * ```ts
 * sweepCsv(rows).split("\n")[0]; // "interval,window,replicas,policy,estimator,from_previous,balancedness,..."
 * ```
 */
export function sweepCsv(rows: readonly SweepRow[]): string {
  return `${[CSV_HEADER.join(","), ...rows.map((r) => rowCells(r, (x) => String(round6(x))).join(","))].join("\n")}\n`;
}

/**
 * Sweep rows as a readable table.
 *
 * @example
 * ```ts
 * formatSweepTable(rows, "trace.npy"); // "eplb simulate --sweep: trace.npy, 4 configurations\n..."
 * ```
 */
export function formatSweepTable(rows: readonly SweepRow[], traceName: string): string {
  const header = [
    "interval",
    "window",
    "replicas",
    "policy",
    "estimator",
    "previous",
    "budget",
    "min gain",
    "tolerance",
    "slot gain",
    "balancedness",
    "worst",
    "moved/rebal",
    "moved",
    "moved/step",
    "deepseek bal",
    "deepseek moved",
    "oracle bal",
    "none bal",
  ];
  // Only a relaxed hierarchy serves load off its group's node: show the column when it does.
  const showOff = rows.some((r) => r.offNodeShare > 0);
  if (showOff) header.push("off node");
  header.push("pareto");
  const cells = rows.map((r) => {
    const c = rowCells(r, f4).slice(0, 18);
    c[5] = sweepValue(r, "previous");
    c[6] = sweepValue(r, "move-budget");
    c[7] = sweepValue(r, "min-gain");
    c[8] = sweepValue(r, "tolerance");
    c[9] = sweepValue(r, "slot-gain");
    c[13] = pct(r.movedSlotsFraction);
    c.splice(14, 0, moves(r.movedSlotsPerStep));
    if (showOff) c.push(pct(r.offNodeShare));
    c.push(r.paretoOptimal ? "*" : "");
    return c;
  });
  const marked = rows.some((r) => r.paretoOptimal)
    ? "\n* = on the Pareto front: no other configuration realises as much balance with as few slots moved per step.\n"
    : "";
  return `eplb simulate --sweep: ${traceName}, ${rows.length} configurations\n\n${table(header, cells, 0)}\n${marked}`;
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

/**
 * A C-order `.npy` trace opened for reading step by step (nothing but the current step in
 * memory, files over 2 GiB included), or null when the trace must be read whole: another format,
 * a `--key` or `--slot-placement`, a 2-D or Fortran-order array.
 */
function streamTrace(path: string, flags: Flags, ctx: CliContext): NpyTraceSource | null {
  const format = formatFlag(flags);
  if (format !== undefined && format !== "npy") return null;
  if (flags.key !== undefined || flags["slot-placement"] !== undefined) return null;
  return openNpyTrace(resolve(ctx.cwd, path), { steps: stringFlag(flags, "steps") });
}

/** Reads the trace with the format readers; a `--steps` slice keeps only those steps. */
function loadTrace(path: string, flags: Flags, ctx: CliContext): LoadTrace {
  const format = formatFlag(flags);
  const slots = stringFlag(flags, "slot-placement");
  return readTrace(resolve(ctx.cwd, path), {
    format,
    key: stringFlag(flags, "key"),
    steps: stringFlag(flags, "steps"),
    slotPlacement: slots === undefined ? undefined : resolve(ctx.cwd, slots),
  });
}

function baseConfig(flags: Flags, trace: TraceShape): PlainConfig {
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
  checkConfig(config, trace);
  return config;
}

/**
 * The HTML report of one simulation: the simulation section first, then the standard sections
 * for the last placement under the traffic it was judged on (the steps after the last rebalance).
 *
 * @example
 * ```ts
 * writeFileSync("sim.html", simulationHtml(simulate(trace, config), "trace.npy"));
 * ```
 */
export function simulationHtml(r: SimulationResult, traceName: string): string {
  const t = r.topology;
  const last = r.rebalanceSteps[r.rebalanceSteps.length - 1];
  const model = buildReportModel({
    loads: r.finalLoads,
    placement: r.finalPlacement,
    numGpus: t.numGpus,
    numNodes: t.numNodes,
    numGroups: t.numGroups,
    policy: r.policy,
    mode: t.hierarchical ? "hierarchical" : "global",
    title: "EPLB simulation report",
    sources: {
      loads: `${traceName} (the sections after the simulation: steps ${last}..${r.steps - 1}, the last placement)`,
    },
  });
  return htmlReport(model, { sections: [simulationSection(r, traceName), ...defaultSections()] });
}

/** The HTML report of a sweep: the sweep chart (the header describes the trace). */
function sweepHtml(
  trace: LoadTrace,
  base: PlainConfig,
  rows: readonly SweepRow[],
  traceName: string,
): string {
  const n = trace.layers * trace.experts;
  const total = new Float64Array(n);
  for (let t = 0; t < trace.steps; t++)
    for (let i = 0; i < n; i++) total[i] += trace.data[t * n + i];
  const loads = { layers: trace.layers, experts: trace.experts, data: total };
  const plan = rebalanceExperts(
    loads,
    base.numReplicas,
    base.numGroups,
    base.numNodes,
    base.numGpus,
    {
      policy: base.policy,
    },
  );
  const model = buildReportModel({
    loads,
    placement: plan.placement,
    numGpus: base.numGpus,
    numNodes: base.numNodes,
    numGroups: base.numGroups,
    title: "EPLB simulation sweep",
    sources: { loads: traceName },
  });
  const varied = SWEEP_NAMES.filter((k) => new Set(rows.map((r) => sweepValue(r, k))).size > 1);
  const points = rows.map((r) => ({
    // "*" marks the Pareto front, as in the table.
    label: `${varied.length ? varied.map((k) => sweepValue(r, k)).join("/") : "base"}${r.paretoOptimal ? " *" : ""}`,
    balancedness: r.meanRealizedBalancedness,
    movedSlotsFraction: r.movedSlotsFraction,
    deepseekBalancedness: r.baselines.deepseek?.meanRealizedBalancedness,
    deepseekMovedSlotsFraction: r.baselines.deepseek?.movedSlotsFraction,
    oracleBalancedness: r.baselines.oracle?.meanRealizedBalancedness,
  }));
  const axis = varied.length ? varied.join(" / ") : "configuration";
  return htmlReport(model, { sections: [sweepSection(points, traceName, axis)] });
}

const OPTIONS = {
  trace: { type: "string" },
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
  sweep: { type: "string", multiple: true },
  json: { type: "boolean" },
  csv: { type: "boolean" },
  workers: { type: "string" },
  out: { type: "string" },
  html: { type: "string" },
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
    return `Usage: eplb simulate --trace FILE --replicas N --gpus N [--groups N] [--nodes N]
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
  --trace FILE      the trace: .npy (hotness[time, layer, expert]), SGLang recorder dump .pt,
                    JSON {"logical_count": [[[...]]]}, ...; see eplb synth for a synthetic one
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
  --json            print a JSON summary (meanRealizedBalancedness, movedSlotsPerRebalance,
                    baselines, per-step series) instead of the table
  --sweep NAME=V,.. vary interval, window, replicas, policy, estimator, previous (yes,no),
                    move-budget, min-gain, tolerance or slot-gain (repeatable: the grid of all
                    combinations); one row per configuration, --csv or --json on request;
                    * marks the Pareto front of balancedness against slots moved per step
  --csv             with --sweep: CSV instead of the table
  --workers N       worker threads for a sweep [default: the cores, when the sweep is large]
  --out FILE        write the output there instead of stdout
  --html FILE       also write an HTML report: balancedness over time, slots moved per
                    rebalance (or, with --sweep, the sweep as a chart), and the last placement
  -h, --help        this help

Examples:
  eplb synth --steps 2000 --layers 58 --experts 256 --seed 1 --out trace.npy
  eplb simulate --trace trace.npy --replicas 288 --groups 8 --nodes 4 --gpus 32 --interval 100
  eplb simulate --trace trace.npy --replicas 288 --groups 8 --nodes 4 --gpus 32 --interval 100 \\
      --sweep interval=50,100,200 --sweep estimator=mean,ema --csv
`;
  },
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("simulate", joinSteps(argv), OPTIONS);
    const tracePath = requireString(flags, "trace");
    const sweepSpecs = (flags.sweep as string[] | undefined) ?? [];
    if (flags.csv === true && sweepSpecs.length === 0) {
      throw new UsageError("--csv needs --sweep (a single run prints a table or --json)");
    }
    if (flags.csv === true && flags.json === true) {
      throw new UsageError("--csv and --json exclude each other");
    }
    const sweeps = parseSweeps(sweepSpecs);
    const workersFlag = flags.workers === undefined ? undefined : integerFlag(flags, "workers", 0);
    const streamed = streamTrace(tracePath, flags, ctx);
    try {
      await simulateTrace(
        tracePath,
        streamed,
        flags,
        ctx,
        sweeps,
        sweepSpecs.length > 0,
        workersFlag,
      );
    } finally {
      streamed?.close();
    }
  },
};

async function simulateTrace(
  tracePath: string,
  streamed: NpyTraceSource | null,
  flags: Flags,
  ctx: CliContext,
  sweeps: ReturnType<typeof parseSweeps>,
  sweeping: boolean,
  workersFlag: number | undefined,
): Promise<void> {
  const out = stringFlag(flags, "out");
  if (sweeping) {
    // Worker threads share one copy: read the whole trace, as int32 when it holds counts.
    const trace = streamed ? readAllSteps(streamed) : loadTrace(tracePath, flags, ctx);
    const base = baseConfig(flags, trace);
    const grid = sweepGrid(base, sweeps);
    for (const c of grid) checkConfig(c, trace);
    const cells = trace.steps * trace.layers * trace.experts;
    const workers =
      workersFlag ?? (grid.length > 1 && cells >= 2_000_000 ? availableParallelism() : 1);
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

  const trace = streamed ?? loadTrace(tracePath, flags, ctx);
  const base = baseConfig(flags, trace);
  const bar = new ProgressBar(ctx, "steps");
  const start = performance.now();
  const result = simulate(trace, { ...base, onProgress: (d, t) => bar.update(d, t) });
  const timeMs = performance.now() - start;
  bar.done();
  if (flags.json === true) {
    writeResult(`${JSON.stringify(simulationJson(result, tracePath, timeMs))}\n`, out, ctx);
  } else {
    writeResult(formatSimulationTable(result, tracePath), out, ctx);
    ctx.stderr(`eplb simulate: ${(timeMs / 1000).toFixed(2)} s\n`);
  }
  const html = stringFlag(flags, "html");
  if (html !== undefined) writeResult(simulationHtml(result, tracePath), html, ctx);
}

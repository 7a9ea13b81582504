// `eplb simulate --sweep`: the grid of configurations, running it (on worker threads sharing one
// copy of the trace), the Pareto front, and the sweep's table and CSV.
import { Worker } from "node:worker_threads";
import { policyNames } from "../core/policies/index.js";
import { ESTIMATOR_KINDS, type EstimatorKind, type LoadTrace } from "../core/traces/estimators.js";
import {
  type SimulationConfig,
  type SimulationResult,
  type StrategyResult,
  simulate,
} from "../core/traces/simulate.js";
import { UsageError } from "./command.js";
import { fixed4, percent2, round6, slotCount, textTable } from "./output.js";

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

/**
 * A strategy's figures without its per-step series.
 *
 * @example
 * ```ts
 * strategySummary(result.eplb).meanRealizedBalancedness; // 0.88...
 * ```
 */
export function strategySummary(s: StrategyResult): StrategySummary {
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
 * // { interval: ["50", "100"], policy: ["deepseek"] }
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
  const size = Object.values(out).reduce((n, values) => n * values.length, 1);
  if (size > MAX_SWEEP_CONFIGURATIONS) {
    throw new UsageError(
      `--sweep: the grid has ${size} configurations, more than the ${MAX_SWEEP_CONFIGURATIONS} a sweep runs (each replays the whole trace); sweep fewer values at a time`,
    );
  }
  return out;
}

/**
 * Most configurations one `--sweep` grid may have. Each replays the whole trace (seconds each on
 * a real trace), so a larger grid would run for hours without a word: refused in one line.
 */
export const MAX_SWEEP_CONFIGURATIONS = 1000;

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
  const { steps, layers, experts } = trace;
  // Already in shared memory (readAllSteps puts it there): hand it over without a copy.
  if (data.buffer instanceof SharedArrayBuffer && data.byteOffset === 0) {
    const whole = data.byteLength === data.buffer.byteLength;
    const kind =
      data instanceof Int32Array
        ? "int32"
        : data instanceof Float32Array
          ? "float32"
          : data instanceof Float64Array
            ? "float64"
            : null;
    if (whole && kind) return { steps, layers, experts, buffer: data.buffer, dtype: kind };
  }
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
  return { steps, layers, experts, buffer, dtype };
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
    slotCount(r.movedSlotsPerRebalance),
    digits(r.movedSlotsFraction),
    opt(b.deepseek?.meanRealizedBalancedness, digits),
    opt(b.deepseek?.movedSlotsPerRebalance, slotCount),
    opt(b.oracle?.meanRealizedBalancedness, digits),
    opt(b.none?.meanRealizedBalancedness, digits),
    digits(r.offNodeShare),
    slotCount(r.movedSlotsPerStep),
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
    const c = rowCells(r, fixed4).slice(0, 18);
    c[5] = sweepValue(r, "previous");
    c[6] = sweepValue(r, "move-budget");
    c[7] = sweepValue(r, "min-gain");
    c[8] = sweepValue(r, "tolerance");
    c[9] = sweepValue(r, "slot-gain");
    c[13] = percent2(r.movedSlotsFraction);
    c.splice(14, 0, slotCount(r.movedSlotsPerStep));
    if (showOff) c.push(percent2(r.offNodeShare));
    c.push(r.paretoOptimal ? "*" : "");
    return c;
  });
  const marked = rows.some((r) => r.paretoOptimal)
    ? "\n* = on the Pareto front: no other configuration realises as much balance with as few slots moved per step.\n"
    : "";
  return `eplb simulate --sweep: ${traceName}, ${rows.length} configurations\n\n${textTable(header, cells, 0)}\n${marked}`;
}

/**
 * Seconds of one replay per (step, layer, expert) cell, with and without the baselines: a rough
 * figure measured on one core of a 2024 server (DeepSeek-sized synthetic traces), for the
 * estimate a sweep prints before it starts.
 */
const SECONDS_PER_CELL = { baselines: 4e-7, alone: 2e-7 };

/**
 * The line a sweep prints on stderr before it starts: its size and a rough estimate of its
 * duration, so that a grid larger than meant can be stopped at once.
 *
 * @example
 * ```ts
 * sweepStartLine(12, { steps: 2000, layers: 58, experts: 256 }, 2, false);
 * // "eplb simulate --sweep: 12 configurations x 2000 steps on 2 threads, about 1 min (rough estimate)\n"
 * ```
 */
export function sweepStartLine(
  configurations: number,
  trace: Pick<LoadTrace, "steps" | "layers" | "experts">,
  workers: number,
  noBaselines: boolean,
): string {
  const cells = trace.steps * trace.layers * trace.experts;
  const perCell = noBaselines ? SECONDS_PER_CELL.alone : SECONDS_PER_CELL.baselines;
  const threads = Math.max(1, Math.min(workers, configurations));
  const seconds = (configurations * cells * perCell) / threads;
  const about =
    seconds < 60
      ? `${Math.max(1, Math.round(seconds))} s`
      : seconds < 5400
        ? `${Math.round(seconds / 60)} min`
        : `${(seconds / 3600).toFixed(1)} h`;
  return (
    `eplb simulate --sweep: ${configurations} configuration${configurations === 1 ? "" : "s"} ` +
    `x ${trace.steps} steps on ${threads} thread${threads === 1 ? "" : "s"}, about ${about} (rough estimate)\n`
  );
}

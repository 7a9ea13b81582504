// A sweep of simulations (`eplb simulate --sweep`): the grid of configurations, running it (on
// worker threads sharing one copy of the trace) and the Pareto front. The CLI parses the flags and
// prints the rows (src/cli/sweep.ts).
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { StrategyCost } from "../core/cost/ledger.js";
import type { EstimatorKind, LoadTrace } from "../core/traces/estimators.js";
import {
  type SimulationConfig,
  type SimulationResult,
  type StrategyResult,
  simulate,
} from "../core/traces/simulate.js";

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
export const OPTION_SWEEPS = {
  "move-budget": "moveBudget",
  "min-gain": "minGain",
  tolerance: "tolerance",
  "slot-gain": "slotGain",
} as const;
export type OptionSweep = keyof typeof OPTION_SWEEPS;

/**
 * Whether a swept name sets a migration option (rather than a simulation parameter).
 *
 * @param name a sweep name
 * @example
 * ```ts
 * isOptionSweep("min-gain"); // true
 * isOptionSweep("interval"); // false
 * ```
 */
export const isOptionSweep = (name: string): name is OptionSweep =>
  Object.hasOwn(OPTION_SWEEPS, name);

/** A simulation configuration without callbacks, as sent to worker threads. */
export type PlainConfig = Omit<SimulationConfig, "onProgress" | "onJudged">;

/** A strategy's figures without its per-step series. */
export interface StrategySummary {
  meanRealizedBalancedness: number;
  worstRealizedBalancedness: number;
  movedSlotsPerRebalance: number;
  movedSlotsFraction: number;
  offNodeShare: number;
  /** With a cost model only: the replay in milliseconds (the gate's counts for eplb). */
  cost?: CostSummary;
}

/** A {@link StrategyCost} without its per-step and per-rebalance series. */
export type CostSummary = Omit<StrategyCost, "stepMs" | "transferMs">;

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
  /** Judged steps (the trace's steps minus the interval's warm-up). */
  judgedSteps: number;
  /** Slots moved per step: per rebalance over the interval, comparable across intervals. */
  movedSlotsPerStep: number;
  /**
   * On the sweep's Pareto front of balancedness against slots moved per step: no other row
   * realises at least as much balance with at most as many moves, one of them strictly.
   */
  paretoOptimal: boolean;
  baselines: Partial<Record<"none" | "deepseek" | "oracle" | "static", StrategySummary>>;
}

/**
 * A strategy's figures without its per-step series.
 *
 * @param s a strategy of a simulation result
 * @returns its summary figures
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const summary = strategySummary(simulate(trace, base).eplb);
 * summary.meanRealizedBalancedness; // 0.8493...
 * "balancedness" in summary; // false: the per-step series stays out of sweep rows
 * ```
 */
export function strategySummary(s: StrategyResult): StrategySummary {
  const out: StrategySummary = {
    meanRealizedBalancedness: s.meanRealizedBalancedness,
    worstRealizedBalancedness: s.worstRealizedBalancedness,
    movedSlotsPerRebalance: s.movedSlotsPerRebalance,
    movedSlotsFraction: s.movedSlotsFraction,
    offNodeShare: s.offNodeShare,
  };
  if (s.cost) {
    const { stepMs: _steps, transferMs: _stalls, ...figures } = s.cost;
    out.cost = figures;
  }
  return out;
}

function optionNumber(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

/**
 * The value of a swept parameter in a row, as the sweep's labels show it.
 *
 * @param r a sweep row
 * @param name the swept parameter
 * @returns the label: the value, `yes`/`no` for `previous`, `default` for an option not set
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const row = sweepRow(simulate(trace, { ...base, rebalanceOptions: { moveBudget: 0.1 } }));
 * sweepValue(row, "previous"); // "yes"
 * sweepValue(row, "move-budget"); // "0.1"
 * sweepValue(row, "min-gain"); // "default"
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
 * @param r a simulation's result (its per-step series are not kept)
 * @returns the row, not yet on a Pareto front (see {@link markParetoFront})
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const row = sweepRow(simulate(trace, base));
 * row; // { interval: 10, replicas: 24, policy: "balanced", estimator: "ema", fromPrevious: true, rebalances: 19 }
 * row.meanRealizedBalancedness; // 0.8493...
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
    judgedSteps: r.judgedSteps,
    ...strategySummary(r.eplb),
    movedSlotsPerStep: r.eplb.movedSlotsPerRebalance / r.interval,
    paretoOptimal: false,
    baselines,
  };
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
 * @param base the configuration every grid point starts from (not changed)
 * @param sweeps the swept values per name, as text (as `--sweep` gives them, checked)
 * @returns the configurations, `base` first varied by the first name
 * @example
 * ```ts
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const grid = sweepGrid(base, { interval: ["50", "100"], estimator: ["mean", "ema"] });
 * grid.map((c) => `${c.interval} ${c.estimator}`); // ["50 mean", "50 ema", "100 mean", "100 ema"]
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
 * @param t the shared buffer and its element type
 * @returns a view over the whole buffer (no copy)
 * @example
 * ```ts
 * // One step of 2 layers x 4 experts as int32 counts: 4 bytes each.
 * const buffer = new SharedArrayBuffer(2 * 4 * 4);
 * sharedView({ buffer, dtype: "int32" }); // Int32Array [0, 0, 0, 0, 0, 0, 0, 0]
 * sharedView({ buffer, dtype: "float32" }).length; // 8
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
 * @param rows the sweep's rows (their `paretoOptimal` is set in place)
 * @returns the same rows
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const grid = sweepGrid(base, { previous: ["yes", "no"], interval: ["10", "50"] });
 * const rows = markParetoFront(grid.map((c) => sweepRow(simulate(trace, c))));
 * rows.filter((r) => !r.paretoOptimal).map((r) => [r.interval, r.fromPrevious]);
 * // [[50, false]]: every 10 steps from the previous placement balances better and moves less
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
 * @param trace the trace every configuration replays (read whole; in shared memory it is handed
 *   to the workers without a copy)
 * @param grid the configurations, e.g. from {@link sweepGrid}
 * @param workers worker threads to use (at most one per configuration)
 * @param onProgress told the steps replayed so far over all configurations, and their total
 * @returns one row per configuration, in grid order, the Pareto front marked
 * @throws EplbInputError in this thread, or an Error "simulation worker failed: ..." from a
 *   worker, when a configuration cannot run; the other workers are stopped
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const rows = await runSweep(trace, sweepGrid(base, { interval: ["10", "50"] }), 2, () => {});
 * rows.map((r) => [r.interval, r.paretoOptimal]); // [[10, true], [50, true]]
 * rows[1].meanRealizedBalancedness; // 0.8204...
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
    const worker = new Worker(new URL("./sweep-worker.js", import.meta.url), {
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

/**
 * The worker threads a sweep uses unless told otherwise: one per core when there is more than
 * one configuration and each replays at least 2 million (step, layer, expert) cells (below that,
 * starting the threads costs more than they save), else none (this thread).
 *
 * @param configurations the grid's size
 * @param trace the trace's dimensions
 * @returns the thread count for {@link runSweep}
 * @example
 * ```ts
 * defaultSweepWorkers(12, { steps: 2000, layers: 58, experts: 256 }); // availableParallelism()
 * defaultSweepWorkers(12, { steps: 100, layers: 4, experts: 16 }); // 1
 * ```
 */
export function defaultSweepWorkers(
  configurations: number,
  trace: Pick<LoadTrace, "steps" | "layers" | "experts">,
): number {
  const cells = trace.steps * trace.layers * trace.experts;
  return configurations > 1 && cells >= 2_000_000 ? availableParallelism() : 1;
}

/**
 * Seconds of one replay per (step, layer, expert) cell, with and without the baselines: a rough
 * figure measured on one core of a 2024 server (DeepSeek-sized synthetic traces), for the
 * estimate a sweep prints before it starts.
 */
const SECONDS_PER_CELL = { baselines: 4e-7, alone: 2e-7 };

/**
 * A rough duration of a sweep before it starts, from the trace's size and a per-cell cost
 * measured once, so that a grid larger than meant can be stopped at once.
 *
 * @param configurations the grid's size
 * @param trace the trace's dimensions
 * @param workers the worker threads asked for
 * @param noBaselines whether the baselines are skipped (about half the work)
 * @returns the threads actually used (at most one per configuration) and the seconds expected
 * @example
 * ```ts
 * estimateSweep(12, { steps: 2000, layers: 58, experts: 256 }, 2, false);
 * // { threads: 2, seconds: 71.27... }
 * ```
 */
export function estimateSweep(
  configurations: number,
  trace: Pick<LoadTrace, "steps" | "layers" | "experts">,
  workers: number,
  noBaselines: boolean,
): { threads: number; seconds: number } {
  const cells = trace.steps * trace.layers * trace.experts;
  const perCell = noBaselines ? SECONDS_PER_CELL.alone : SECONDS_PER_CELL.baselines;
  const threads = Math.max(1, Math.min(workers, configurations));
  return { threads, seconds: (configurations * cells * perCell) / threads };
}

/** Messages a simulation worker sends back. */
export type WorkerReply =
  | { type: "progress"; id: number; done: number }
  | { type: "done"; id: number; row: SweepRow }
  | { type: "error"; id: number; message: string };

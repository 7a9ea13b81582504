// `eplb simulate --sweep` on the command line: parsing the `--sweep` flags, and printing the rows
// the sweep runner (src/pipeline/sweep.ts) returns as a table or CSV.

import { policyNames } from "../core/policies/index.js";
import { ESTIMATOR_KINDS, type LoadTrace } from "../core/traces/estimators.js";
import {
  estimateSweep,
  isOptionSweep,
  MAX_SWEEP_CONFIGURATIONS,
  SWEEP_NAMES,
  type SweepName,
  type SweepRow,
  sweepValue,
} from "../pipeline/sweep.js";
import { UsageError } from "./command.js";
import { fixed4, percent2, round6, slotCount, textTable } from "./output.js";
import { formatMs, speedup } from "./simulate-cost.js";

/**
 * Parses repeated `--sweep name=v1,v2` flags into value lists (numbers for interval, window and
 * replicas; names for policy and estimator). A name given twice is a mistake.
 *
 * @example
 * ```ts
 * parseSweeps(["interval=50,100", "policy=deepseek"]);
 * // { interval: ["50", "100"], policy: ["deepseek"] }
 * parseSweeps(["gpus=8"]);
 * // throws UsageError: --sweep gpus=8: the name must be one of interval, window, replicas, policy, estimator, ...
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
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const rows = await runSweep(trace, sweepGrid(base, { interval: ["10", "50"] }), 1, () => {});
 * const lines = sweepCsv(rows).split("\n");
 * lines[0].split(",").slice(0, 7); // ["interval", "window", "replicas", "policy", "estimator", "from_previous", "move_budget"]
 * lines[2]; // "50,10,24,balanced,ema,true,,,,,0.820457,0.724259,7.5,0.15625,0.741354,35.5,0.845952,0.442235,0,0.1,true"
 * ```
 */
export function sweepCsv(rows: readonly SweepRow[]): string {
  // With cost flags the rows are priced: their times follow, as the JSON's `cost` gives them.
  const priced = rows.some((r) => r.cost);
  const header = priced ? [...CSV_HEADER, ...COST_CSV_HEADER] : CSV_HEADER;
  const line = (r: SweepRow) => {
    const cells = rowCells(r, (x) => String(round6(x)));
    if (priced) cells.push(...costCsvCells(r));
    return cells.join(",");
  };
  return `${[header.join(","), ...rows.map(line)].join("\n")}\n`;
}

const COST_CSV_HEADER = [
  "moe_ms_per_step",
  "transfer_ms_per_rebalance",
  "total_ms",
  "none_total_ms",
  "deepseek_total_ms",
];

function costCsvCells(r: SweepRow): string[] {
  const ms = (x: number | undefined) => (x === undefined ? "" : String(round6(x)));
  return [
    ms(r.cost?.moeMsPerStep),
    ms(r.cost?.transferMsPerRebalance),
    ms(r.cost?.totalMs),
    ms(r.baselines.none?.cost?.totalMs),
    ms(r.baselines.deepseek?.cost?.totalMs),
  ];
}

/**
 * Sweep rows as a readable table.
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const rows = await runSweep(trace, sweepGrid(base, { interval: ["10", "50"] }), 1, () => {});
 * formatSweepTable(rows, "trace.npy").split("\n")[0]; // "eplb simulate --sweep: trace.npy, 2 configurations"
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
  const priced = rows.some((r) => r.cost);
  if (priced) header.push("total ms", "vs none", "vs deepseek");
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
    if (priced) {
      const total = r.cost?.totalMs ?? Number.NaN;
      c.push(
        formatMs(total),
        speedup(r.baselines.none?.cost?.totalMs, total),
        speedup(r.baselines.deepseek?.cost?.totalMs, total),
      );
    }
    c.push(r.paretoOptimal ? "*" : "");
    return c;
  });
  const marked = rows.some((r) => r.paretoOptimal)
    ? "\n* = on the Pareto front: no other configuration realises as much balance with as few slots moved per step.\n"
    : "";
  return `eplb simulate --sweep: ${traceName}, ${rows.length} configurations\n\n${textTable(header, cells, 0)}\n${marked}`;
}

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
  const { seconds, threads } = estimateSweep(configurations, trace, workers, noBaselines);
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

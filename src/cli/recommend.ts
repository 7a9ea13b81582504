// `eplb simulate --recommend` on the command line: the interval and slot lists from the flags,
// the priced sweep (src/pipeline/recommend.ts), and the answer printed as a table and a verdict.
import type { LoadTrace } from "../core/traces/estimators.js";
import {
  RECOMMEND_INTERVALS,
  type Recommendation,
  type RecommendRow,
  recommendGrid,
  recommendSetup,
} from "../pipeline/recommend.js";
import type { PlainConfig } from "../pipeline/sweep.js";
import { defaultSweepWorkers } from "../pipeline/sweep.js";
import { sweepHtml } from "../pipeline/sweep-report.js";
import type { Flags } from "./args.js";
import { type CliContext, UsageError } from "./command.js";
import { fixed4, round6, slotCount, textTable, writeResult } from "./output.js";
import { describeCostModel, formatMs, speedup } from "./simulate-cost.js";
import { sweepStartLine } from "./sweep.js";

/**
 * A flag holding one integer or a comma-separated list of them (`--interval 50,100`).
 *
 * @param flags the parsed flags
 * @param name the flag
 * @returns the values, or undefined when the flag is absent
 * @throws {UsageError} when a value is not an integer >= 1
 * @example
 * ```ts
 * integerList({ interval: "50,100" }, "interval"); // [50, 100]
 * integerList({ interval: "50,x" }, "interval"); // throws UsageError: --interval ("50,x") must be an integer >= 1 or a list of them, as in 50,100
 * ```
 */
export function integerList(flags: Flags, name: string): number[] | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const parts = typeof v === "string" ? v.split(",").map((x) => x.trim()) : [];
  if (parts.length === 0 || parts.some((x) => !/^\d+$/.test(x) || Number(x) < 1)) {
    throw new UsageError(
      `--${name} (${JSON.stringify(v)}) must be an integer >= 1 or a list of them, as in 50,100`,
    );
  }
  return [...new Set(parts.map(Number))];
}

function rowCells(r: RecommendRow): string[] {
  const c = r.row.cost;
  return [
    String(r.interval),
    String(r.replicas),
    fixed4(r.row.meanRealizedBalancedness),
    slotCount(r.row.movedSlotsPerRebalance),
    `${r.rebalancesDone}/${r.rebalances}`,
    c ? formatMs(c.moeMsPerStep) : "",
    c ? formatMs(c.transferMsPerRebalance) : "",
    formatMs(r.totalMs),
    formatMs(r.staticTotalMs),
    speedup(r.staticTotalMs, r.totalMs),
    speedup(r.noneTotalMs, r.totalMs),
    speedup(r.deepseekTotalMs, r.totalMs),
    r.pays ? "yes" : "no",
  ];
}

/**
 * The verdict lines of a recommendation: the best setup, the break-even interval, or plainly
 * that rebalancing does not pay.
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10, cost };
 * const rec = recommendFromRows(recommendGrid(base, [10, 50]).map((c) => sweepRow(simulate(trace, c))));
 * recommendationVerdict(rec).length; // 2: the recommendation, and the break-even with 24 slots
 * recommendationVerdict(rec)[0].startsWith("Recommended: rebalance every"); // true
 * ```
 */
export function recommendationVerdict(rec: Recommendation): string[] {
  const b = rec.best;
  const tried = [...new Set(rec.rows.map((r) => r.interval))];
  if (!rec.pays) {
    const gated = rec.rows.every((r) => r.rebalancesDone === 0);
    return [
      `Rebalancing does NOT pay at any interval tried (${tried.join(", ")} steps): ${
        gated
          ? "the gate skipped every rebalance after the first, each expected to save less MoE time than its transfers stall"
          : "at every interval eplb took at least as long as its first placement kept: the balance its rebalances buy saves less than they stall"
      }.`,
      b.staticTotalMs < b.noneTotalMs
        ? `Deploy a balanced placement and keep it (kept, it serves these steps ${speedup(b.noneTotalMs, b.staticTotalMs)} faster than no balancing with ${b.replicas} slots), or rebalance less often than every ${Math.max(...tried)} steps.`
        : `Balancing does not pay here either: a balanced placement kept serves these steps ${speedup(b.noneTotalMs, b.staticTotalMs)} as fast as no balancing (${b.replicas} slots; with --expert-load-us, replicas add distinct experts whose weights a GPU streams every step).`,
    ];
  }
  const lines = [
    `Recommended: rebalance every ${b.interval} steps with ${b.replicas} slots: ${formatMs(b.totalMs)} ms over the judged steps, ${speedup(b.staticTotalMs, b.totalMs)} faster than keeping its first placement, ${speedup(b.noneTotalMs, b.totalMs)} than no balancing, ${speedup(b.deepseekTotalMs, b.totalMs)} than deepseek re-planning at that interval.`,
  ];
  for (const { replicas, interval } of rec.breakEven) {
    const shortest = Math.min(
      ...rec.rows.filter((r) => r.replicas === replicas).map((r) => r.interval),
    );
    lines.push(
      interval === null
        ? `With ${replicas} slots rebalancing does not pay at any interval tried.`
        : `Break-even with ${replicas} slots: rebalancing beats keeping the first placement from every ${interval} steps on${interval === shortest ? " (already at the shortest interval tried)" : ""}.`,
    );
  }
  return lines;
}

/**
 * The recommendation as text: the setups' table, then the verdict.
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10, cost };
 * const rec = recommendFromRows(recommendGrid(base, [10, 50]).map((c) => sweepRow(simulate(trace, c))));
 * formatRecommendation(rec, "trace.npy").split("\n")[0]; // "eplb simulate --recommend: trace.npy, 2 setups"
 * ```
 */
export function formatRecommendation(rec: Recommendation, traceName: string): string {
  const header = [
    "interval",
    "replicas",
    "balancedness",
    "moved/rebal",
    "rebalances done",
    "moe ms/step",
    "transfer ms/rebal",
    "total ms",
    "kept total ms",
    "vs kept",
    "vs none",
    "vs deepseek",
    "pays",
  ];
  return [
    `eplb simulate --recommend: ${traceName}, ${rec.rows.length} setups`,
    "",
    textTable(header, rec.rows.map(rowCells), 0),
    "",
    "total = eplb's MoE time over the judged steps plus its rebalances' stalls; kept = eplb's first placement kept,",
    "never rebalanced, over the same steps (not rebalancing); none = no balancing at all;",
    "rebalances done = rebalances after the first that moved weights (the others the gate skipped);",
    "pays = rebalancing takes less time than keeping the first placement. Setups are ranked by their time relative",
    "to no balancing, since other intervals judge other steps.",
    "",
    ...recommendationVerdict(rec),
    "",
  ].join("\n");
}

/**
 * The `--json` object of a recommendation.
 *
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10, cost };
 * const rec = recommendFromRows(recommendGrid(base, [10, 50]).map((c) => sweepRow(simulate(trace, c))));
 * recommendationJson(rec).setups.length; // 2
 * recommendationJson(rec).breakEven; // [{ replicas: 24, interval: 10 }]
 * ```
 */
export function recommendationJson(rec: Recommendation): Record<string, unknown> {
  const brief = (r: RecommendRow) => ({
    interval: r.interval,
    replicas: r.replicas,
    totalMs: round6(r.totalMs),
    noneTotalMs: round6(r.noneTotalMs),
    staticTotalMs: round6(r.staticTotalMs),
    deepseekTotalMs: round6(r.deepseekTotalMs),
    speedupVsStatic: round6(r.speedupVsStatic),
    speedupVsNone: round6(r.speedupVsNone),
    speedupVsDeepseek: round6(r.speedupVsDeepseek),
    rebalances: r.rebalances,
    rebalancesDone: r.rebalancesDone,
    pays: r.pays,
  });
  return {
    pays: rec.pays,
    recommended: rec.pays ? brief(rec.best) : null,
    best: brief(rec.best),
    breakEven: rec.breakEven,
    verdict: recommendationVerdict(rec).join(" "),
    setups: rec.rows.map((r) => ({ ...brief(r), row: r.row })),
  };
}

/**
 * Runs `--recommend` on a trace read whole: the priced sweep over the interval and slot lists.
 *
 * @param tracePath how the output names the trace
 * @param trace the trace, whole
 * @param flags the parsed flags
 * @param ctx where to print
 * @param workersFlag `--workers`, if given
 * @param configOf the configuration a set of flags gives, checked against the trace (simulate's)
 * @param progress told the steps replayed so far and their total; `done` when finished
 * @throws {UsageError} without cost flags, with --no-baselines, or when no interval is shorter
 *   than the trace
 */
export async function recommendTrace(
  tracePath: string,
  trace: LoadTrace,
  flags: Flags,
  ctx: CliContext,
  workersFlag: number | undefined,
  configOf: (flags: Flags) => PlainConfig,
  progress: { update(done: number, total: number): void; done(): void },
): Promise<void> {
  if (flags["no-baselines"] === true) {
    throw new UsageError("--recommend compares with no balancing: drop --no-baselines");
  }
  const intervals =
    integerList(flags, "interval") ?? RECOMMEND_INTERVALS.filter((i) => i < trace.steps);
  if (intervals.length === 0) {
    throw new UsageError(
      `--recommend: the trace's ${trace.steps} steps are too few for any interval tried (${RECOMMEND_INTERVALS.join(", ")}); give --interval`,
    );
  }
  const replicas = integerList(flags, "replicas");
  const first: Flags = { ...flags, interval: String(intervals[0]) };
  if (replicas) first.replicas = String(replicas[0]);
  const base = configOf(first);
  if (!base.cost) {
    throw new UsageError(
      "--recommend needs cost flags: --model and --hardware, or --expert-bytes, --link-gbps and --token-us",
    );
  }
  const grid = recommendGrid(base, intervals, replicas, flags.window !== undefined);
  // Every setup checked before the first replay, as a sweep does.
  for (const c of grid) {
    configOf({ ...first, interval: String(c.interval), replicas: String(c.numReplicas) });
  }
  const workers = workersFlag ?? defaultSweepWorkers(grid.length, trace);
  ctx.stderr(sweepStartLine(grid.length, trace, workers, false));
  ctx.stderr(`priced with ${describeCostModel(base.cost)}\n`);
  const rec = await recommendSetup(trace, grid, workers, (d, t) => progress.update(d, t));
  progress.done();
  const out = typeof flags.out === "string" ? flags.out : undefined;
  const text =
    flags.json === true
      ? `${JSON.stringify(recommendationJson(rec), null, 2)}\n`
      : formatRecommendation(rec, tracePath);
  writeResult(text, out, ctx);
  // The setups as a sweep's page: balance and moves per setup, and the last placement.
  const html = typeof flags.html === "string" ? flags.html : undefined;
  if (html !== undefined) {
    writeResult(
      sweepHtml(
        trace,
        base,
        rec.rows.map((r) => r.row),
        tracePath,
      ),
      html,
      ctx,
    );
  }
}

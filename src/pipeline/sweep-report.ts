// The write stage of a sweep's HTML report: the sweep chart over a plan of the whole trace.

import { rebalanceExperts } from "../core/rebalance.js";
import type { LoadTrace } from "../core/traces/estimators.js";
import { htmlReport } from "../report/html.js";
import { buildReportModel } from "../report/model.js";
import { sweepSection } from "../report/simulation.js";
import { type PlainConfig, SWEEP_NAMES, type SweepRow, sweepValue } from "./sweep.js";

/**
 * The HTML report of a sweep: the sweep chart, one point per configuration (the label names the
 * swept values, `*` marks the Pareto front). The page's header and summary describe a plan of the
 * base configuration on the whole trace's summed loads.
 *
 * @param trace the trace the sweep replayed
 * @param base the sweep's base configuration (its topology and policy plan the summary)
 * @param rows the sweep's rows, as `runSweep` returns them
 * @param traceName how the page names the trace
 * @returns a self-contained HTML page
 * @throws EplbInputError when the base configuration cannot plan the trace (checked before a
 *   sweep runs, so not after one)
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const base = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * const rows = await runSweep(trace, sweepGrid(base, { interval: ["10", "50"] }), 1, () => {});
 * writeFileSync("sweep.html", sweepHtml(trace, base, rows, "synthetic trace"));
 * ```
 */
export function sweepHtml(
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

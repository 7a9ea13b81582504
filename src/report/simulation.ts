import type { SimulationResult, StrategyName, StrategyResult } from "../core/traces/simulate.js";
import { AFTER_COLOR, BEFORE_COLOR, BOUND_COLOR, MEAN_COLOR } from "./colors.js";
import { defaultSections, figure, htmlReport, type ReportSection } from "./html.js";
import { buildReportModel } from "./model.js";
import { escapeXml, svgBarChart, svgLineChart } from "./svg.js";

/** How each strategy is drawn and named in the simulation charts. */
const STYLE: Record<
  StrategyName,
  { color: string; dash?: string; label: (policy: string) => string }
> = {
  eplb: { color: AFTER_COLOR, label: (p) => `eplb (${p})` },
  deepseek: { color: MEAN_COLOR, dash: "6 4", label: () => "deepseek re-planning (window mean)" },
  oracle: { color: BOUND_COLOR, dash: "2 3", label: (p) => `oracle (${p} on the judged steps)` },
  none: { color: BEFORE_COLOR, label: () => "no balancing" },
  static: {
    color: "#7b3294",
    dash: "8 3",
    label: () => "eplb's first placement, never rebalanced",
  },
};

function f4(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : "-";
}

/** A strategy's line in a chart over the judged steps, in its style. */
function lineOf(name: StrategyName, values: ArrayLike<number>, r: SimulationResult) {
  return { name: labelOf(name, r), values, color: STYLE[name].color, dash: STYLE[name].dash };
}

/** The label of a strategy in this simulation (the configuration says how it rebalances). */
function labelOf(name: StrategyName, r: SimulationResult): string {
  return STYLE[name].label(
    name === "eplb" && r.fromPrevious ? `${r.policy}, from the previous placement` : r.policy,
  );
}

/**
 * A strategy's cumulative time over the judged steps, in seconds: each step's MoE time plus the
 * stall of every rebalance after the first, booked at the step it takes effect.
 *
 * @param r the simulation (its judged steps and rebalance steps)
 * @param s one of its strategies, priced with its per-step series kept
 * @returns one value per judged step (empty when the strategy is not priced or keeps no series)
 * @example
 * ```ts
 * const trace = { steps: 6, layers: 1, experts: 2, data: new Float64Array([3, 1, 3, 1, 1, 3, 1, 3, 1, 3, 1, 3]) };
 * const cost = makeCostModel({ expertBytes: 1e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
 * const r = simulate(trace, { numReplicas: 4, numGroups: 1, numNodes: 1, numGpus: 2, interval: 2,
 *   window: 2, estimator: "mean", policy: "deepseek", cost, costGate: false });
 * cumulativeSeconds(r, r.eplb).length; // 4: one per judged step
 * cumulativeSeconds(r, r.eplb)[3] * 1000 === r.eplb.cost?.totalMs; // true
 * ```
 */
export function cumulativeSeconds(r: SimulationResult, s: StrategyResult): Float64Array {
  const c = s.cost;
  if (!c || c.stepMs.length === 0) return new Float64Array(0);
  const out = new Float64Array(c.stepMs.length);
  let k = 1;
  let sum = 0;
  for (let j = 0; j < out.length; j++) {
    while (k < r.rebalanceSteps.length && r.rebalanceSteps[k] - r.firstJudgedStep <= j) {
      sum += c.transferMs[k++];
    }
    sum += c.stepMs[j];
    out[j] = sum / 1e3;
  }
  return out;
}

/** The chart of cumulative time per strategy, when the simulation was priced. */
function timeChart(r: SimulationResult): string {
  const series = strategies(r)
    .map(([name, s]) => ({ name, values: cumulativeSeconds(r, s) }))
    .filter((x) => x.values.length > 0);
  if (series.length === 0) return "";
  const chart = svgLineChart({
    title: "Cumulative time: MoE time plus rebalancing stalls",
    description: `Seconds of MoE time and transfer stalls since step ${r.firstJudgedStep}, for each strategy`,
    series: series.map(({ name, values }) => lineOf(name, values, r)),
    xLabel: "step",
    yLabel: "seconds",
    xStart: r.firstJudgedStep,
    yMin: 0,
  });
  return figure(
    chart,
    "Time spent since the first judged step under each strategy: each step's MoE time (the busiest GPU's per layer, summed over layers) plus, at each rebalance after the first, the stall of its transfers. Lower is faster; a jump is a rebalance.",
  );
}

function strategies(r: SimulationResult): Array<[StrategyName, StrategyResult]> {
  const out: Array<[StrategyName, StrategyResult]> = [["eplb", r.eplb]];
  for (const name of ["deepseek", "oracle", "none", "static"] as const) {
    const s = r.baselines[name];
    if (s) out.push([name, s]);
  }
  return out;
}

/**
 * The report section of one simulation: a table of every strategy's realised balancedness and
 * slot moves, balancedness of every judged step over time, and slots moved at each rebalance.
 *
 * @example
 * ```ts
 * const trace = readTrace("trace.npy"); // 16 steps x 4 layers x 16 experts
 * const config = { numReplicas: 16, numGroups: 1, numNodes: 1, numGpus: 4, interval: 4, window: 4 };
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const model = buildReportModel({ loads, placement: rebalanceExperts(loads, 4, 1, 1, 2).placement, numGpus: 2 });
 * const html = htmlReport(model, { sections: [simulationSection(simulate(trace, config), "trace.npy")] });
 * html.includes("trace.npy"); // true
 * ```
 */
export function simulationSection(r: SimulationResult, traceName: string): ReportSection {
  return {
    id: "simulation",
    title: "Simulation: realised balance over time",
    render: () => {
      const t = r.topology;
      const priced = r.eplb.cost !== undefined;
      const costCells = (s: StrategyResult) =>
        s.cost
          ? `<td>${s.cost.moeMsPerStep.toFixed(3)}</td><td>${s.cost.transferMsPerRebalance.toFixed(3)}</td><td>${(s.cost.totalMs / 1e3).toFixed(3)}</td>`
          : "";
      const rows = strategies(r)
        .map(
          ([name, s]) =>
            `<tr><th scope="row">${escapeXml(labelOf(name, r))}</th><td>${f4(s.meanRealizedBalancedness)}</td><td>${f4(s.worstRealizedBalancedness)}</td><td>${name === "none" ? "0" : s.movedSlotsPerRebalance.toFixed(1)}</td><td>${(s.movedSlotsFraction * 100).toFixed(2)}%</td>${costCells(s)}</tr>`,
        )
        .join("");
      const lead =
        `<p class="lead">${escapeXml(traceName)}: ${r.steps} steps x ${r.layers} layers x ${r.experts} experts on ${t.numReplicas} slots, ${t.numGpus} GPUs. ` +
        `Every ${r.interval} steps the loads of the last ${r.window} steps (estimator ${escapeXml(r.estimator.kind)}) are planned ` +
        `${r.fromPrevious ? "from the previous placement" : "from scratch"}; each later step is judged by its realised balancedness. ` +
        `Steps before ${r.firstJudgedStep} only warm the estimator up. Deepseek re-planning plans from scratch on the window's mean load, as engines do.</p>`;
      const table =
        `<table class="sim-table"><caption>Realised balancedness (mean / max GPU load) over ${r.judgedSteps} judged steps, and slots moved per rebalance (of ${r.layers * t.numReplicas})</caption>` +
        `<thead><tr><th scope="col">strategy</th><th scope="col">mean</th><th scope="col">worst step</th><th scope="col">slots moved / rebalance</th><th scope="col">moved</th>${priced ? '<th scope="col">MoE ms / step</th><th scope="col">transfer ms / rebalance</th><th scope="col">total s</th>' : ""}</tr></thead><tbody>${rows}</tbody></table>`;
      const timeline = svgLineChart({
        title: "Realised balancedness per step",
        description: `Balancedness of every judged step from step ${r.firstJudgedStep}, for each strategy`,
        series: strategies(r)
          .filter(([, s]) => s.balancedness.length > 0)
          .map(([name, s]) => lineOf(name, s.balancedness, r)),
        xLabel: "step",
        yLabel: "balancedness",
        xStart: r.firstJudgedStep,
        yMax: 1,
      });
      const moved = strategies(r).filter(([name]) => name !== "none");
      const moves = svgBarChart({
        title: "Slots moved at each rebalance",
        description:
          "Slots whose expert changed at each rebalance after the first (which deploys the first plan)",
        categories: r.rebalanceSteps.slice(1).map(String),
        series: moved.map(([name, s]) => ({
          name: labelOf(name, r),
          values: Array.from(s.movedSlots.subarray(1)),
          color: STYLE[name].color,
        })),
        xLabel: "rebalance at step",
        yLabel: "slots moved",
        tooltip: (si, i, v) =>
          `${labelOf(moved[si][0], r)}, step ${r.rebalanceSteps[i + 1]}: ${v} slots`,
      });
      return (
        lead +
        table +
        figure(
          timeline,
          "Balancedness of each judged step (mean / max GPU load, averaged over layers); long series are averaged over buckets.",
        ) +
        timeChart(r) +
        (r.rebalanceSteps.length > 1
          ? figure(
              moves,
              "Slots whose expert changed at each rebalance: every changed slot is a weight transfer.",
            )
          : "")
      );
    },
  };
}

/** One configuration of a sweep, as the sweep chart draws it. */
export interface SweepPoint {
  /** Short label of the configuration, e.g. `"interval=50 estimator=ema"`. */
  label: string;
  balancedness: number;
  movedSlotsFraction: number;
  deepseekBalancedness?: number;
  deepseekMovedSlotsFraction?: number;
  oracleBalancedness?: number;
}

/**
 * The report section of a sweep: realised balancedness and the share of slots moved per
 * rebalance of every configuration, beside deepseek re-planning and the oracle.
 *
 * @example
 * ```ts
 * sweepSection([{ label: "interval=50", balancedness: 0.93, movedSlotsFraction: 0.04 }], "trace.npy");
 * ```
 */
export function sweepSection(
  points: readonly SweepPoint[],
  traceName: string,
  axisLabel = "configuration",
): ReportSection {
  return {
    id: "sweep",
    title: "Simulation sweep",
    render: () => {
      const categories = points.map((p) => p.label);
      const nan = Number.NaN;
      // Balancedness differences between configurations are small: start the axis near the
      // lowest value (said in the caption) so they can be seen.
      let lo = 1;
      for (const p of points) {
        for (const v of [p.balancedness, p.deepseekBalancedness, p.oracleBalancedness]) {
          if (v !== undefined && Number.isFinite(v)) lo = Math.min(lo, v);
        }
      }
      const yMin = Math.max(0, Math.floor((lo - 0.02) * 20) / 20);
      const balance = svgBarChart({
        title: "Realised balancedness per configuration",
        categories,
        series: [
          { name: "eplb", values: points.map((p) => p.balancedness), color: AFTER_COLOR },
          {
            name: "deepseek re-planning (window mean)",
            values: points.map((p) => p.deepseekBalancedness ?? nan),
            color: MEAN_COLOR,
          },
          {
            name: "oracle",
            values: points.map((p) => p.oracleBalancedness ?? nan),
            color: BOUND_COLOR,
          },
        ],
        xLabel: axisLabel,
        yLabel: "balancedness",
        yMin,
        yMax: 1,
      });
      const moved = svgBarChart({
        title: "Share of slots moved per rebalance",
        categories,
        series: [
          { name: "eplb", values: points.map((p) => p.movedSlotsFraction), color: AFTER_COLOR },
          {
            name: "deepseek re-planning (window mean)",
            values: points.map((p) => p.deepseekMovedSlotsFraction ?? nan),
            color: MEAN_COLOR,
          },
        ],
        xLabel: axisLabel,
        yLabel: "share of slots",
        yMax: 1,
      });
      return (
        `<p class="lead">${escapeXml(traceName)}: ${points.length} configurations${points.some((p) => p.label.endsWith(" *")) ? "; * marks the Pareto front of balancedness against slots moved per step" : ""}.</p>` +
        figure(
          balance,
          `Mean realised balancedness of each configuration (1 is perfect; the axis starts at ${yMin}).`,
        ) +
        figure(moved, "Slots whose expert changed per rebalance, as a share of all slots.")
      );
    },
  };
}

/**
 * The HTML report of one simulation: the simulation section first, then the standard sections
 * for the last placement under the traffic it was judged on (the steps after the last rebalance).
 *
 * @param r the simulation's result (`finalLoads` and `finalPlacement` feed the standard sections)
 * @param traceName how the page names the trace (the CLI passes the --trace paths)
 * @returns a self-contained HTML page
 * @throws EplbInputError only if the result is inconsistent (a placement that does not fit its
 *   topology), which `simulate` never returns
 * @example
 * ```ts
 * const trace = synthesizeTrace({ steps: 200, layers: 2, experts: 16, seed: 2, drift: 0.03 });
 * const config = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 10, window: 10 };
 * writeFileSync("sim.html", simulationHtml(simulate(trace, config), "synthetic trace"));
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

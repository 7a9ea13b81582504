import { AFTER_COLOR, BEFORE_COLOR } from "./colors.js";
import { defaultSections, figure, formatRatio, type ReportSection } from "./html.js";
import type { ReportModel } from "./model.js";
import { svgTransferRounds } from "./schedule-chart.js";
import { escapeXml, formatNumber, svgBarChart, svgLineChart } from "./svg.js";

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * The report section of a rebalance from a previous placement (`model.migration`): how many
 * slots change and of which kind each transfer is, then per layer the balancedness the previous
 * placement and the new one give under the report's loads, and the slots changed. Empty when the
 * model has no previous placement.
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4);
 * const { placement } = rebalanceExperts(loads, 6, 1, 1, 2, { previous });
 * const model = buildReportModel({ loads, placement, numGpus: 2, previous });
 * htmlReport(model, { sections: [migrationSection(), ...defaultSections()] }).includes('id="migration"'); // true
 * ```
 */
export function migrationSection(): ReportSection {
  return {
    id: "migration",
    title: "Migration from the previous placement",
    render(m: ReportModel): string {
      const v = m.migration;
      if (!v) return "";
      const total = m.layers * m.numReplicas;
      const t = v.transfers;
      // Copies from another GPU are what take time; a local copy is a memcpy on the GPU.
      const G = m.numGpus;
      const intraIn = Array.from(v.perGpu.incoming.subarray(G, 2 * G));
      const interIn = Array.from(v.perGpu.incoming.subarray(2 * G, 3 * G));
      const remoteIn = Array.from(v.perGpu.remoteIn);
      const remoteOut = Array.from(v.perGpu.remoteOut);
      const prev = v.previousBalance;
      const after = m.after;
      const rows = [
        [
          "Slots changed (weight transfers)",
          `${v.slotsChanged} of ${total} (${pct(v.slotsChanged / total)})`,
        ],
        ["from the same GPU", String(t.local)],
        ["from another GPU of the same node", String(t.intraNode)],
        ["from another node", String(t.interNode)],
        ["Layers changed", `${v.changedPerLayer.filter((c) => c > 0).length} of ${m.layers}`],
        [
          "Balancedness, mean: previous -> new",
          `${formatRatio(prev.balancedness)} -> ${formatRatio(after.balancedness)}`,
        ],
        [
          "Balancedness, worst layer: previous -> new",
          `${formatRatio(prev.worstBalancedness)} -> ${formatRatio(after.worstBalancedness)}`,
        ],
        [
          "Max GPU load, summed over layers: previous -> new",
          `${formatNumber(sum(prev.maxGpuLoad))} -> ${formatNumber(sum(after.maxGpuLoad))}`,
        ],
        ["Most weights copied into one GPU (from another GPU)", busiest(remoteIn)],
        ["Most weights read from one GPU (by another GPU)", busiest(remoteOut)],
      ];
      const sched = v.schedule?.schedule;
      if (sched) {
        rows.push([
          "Transfer schedule (rounds of one copy in and out per GPU)",
          `${sched.rounds} rounds, estimated ${formatNumber(sched.totalMs)} ms`,
        ]);
      }
      const table =
        `<table class="migration-table"><caption>What the rebalance moves and what it buys, under these loads</caption><tbody>` +
        rows
          .map(
            ([k, val]) => `<tr><th scope="row">${escapeXml(k)}</th><td>${escapeXml(val)}</td></tr>`,
          )
          .join("") +
        `</tbody></table>`;
      const balance = svgLineChart({
        title: "Balancedness per layer, previous and new placement",
        description:
          "Mean / max GPU load of every layer under these loads, with the previous placement and with the new one",
        series: [
          { name: "previous placement", values: prev.balancednessPerLayer, color: BEFORE_COLOR },
          { name: "new placement", values: after.balancednessPerLayer, color: AFTER_COLOR },
        ],
        xLabel: "layer",
        yLabel: "balancedness",
        yMax: 1,
        className: "migration-balance",
      });
      const moved = svgBarChart({
        title: "Slots changed per layer",
        description: "Slots whose expert changes in each layer: each one is a weight transfer",
        categories: v.changedPerLayer.map((_, l) => String(l)),
        series: [{ name: "slots changed", values: v.changedPerLayer, color: AFTER_COLOR }],
        xLabel: "layer",
        yLabel: "slots changed",
        tooltip: (_s, l, val) => `layer ${l}: ${val} of ${m.numReplicas} slots change`,
        className: "migration-moves",
      });
      const perGpu = svgBarChart({
        title: "Weights each GPU receives from other GPUs",
        description:
          "Transfers into each GPU, summed over layers, from another GPU of its node and from another node: the busiest GPU bounds how long the rebalance takes",
        categories: intraIn.map((_, g) => String(g)),
        series: [
          { name: "from the same node", values: intraIn, color: AFTER_COLOR },
          { name: "from another node", values: interIn, color: BEFORE_COLOR },
        ],
        xLabel: "GPU",
        yLabel: "weights received",
        tooltip: (si, g, val) =>
          `GPU ${g}: ${val} ${si === 0 ? "from its node" : "from another node"}`,
        className: "migration-gpus",
      });
      return (
        `<p class="lead">The placement the engine runs now, judged under the same loads, against the rebalanced one. ` +
        `Slots changed are the weight transfers the engine makes; the placement grids below outline them.</p>` +
        `<div class="tables">${table}</div>` +
        figure(
          balance,
          "Balancedness of every layer under these loads: previous placement (what the engine runs now) and new.",
        ) +
        figure(moved, "Slots whose expert changes, per layer: each one is a weight transfer.") +
        figure(
          perGpu,
          "Expert weights each GPU copies in from other GPUs, summed over layers (copies within a GPU are not shown). " +
            "The GPU with the most bounds how long applying the rebalance takes.",
        ) +
        (v.schedule
          ? figure(
              svgTransferRounds(v.schedule.plan, v.schedule.schedule, {
                numGpus: m.numGpus,
                slotsPerGpu: m.slotsPerGpu,
                gpusPerNode: m.gpusPerNode,
              }),
              "The rebalance's copies between GPUs in rounds (docs/cost.md): in each round every GPU receives at most one expert and sends at most one; " +
                "a round lasts as long as its slowest copy, so rounds with an inter-node copy (orange) cost the most. Lines separate nodes.",
            )
          : "")
      );
    },
  };
}

/** "N (GPU g), mean M per GPU" for the GPU with the most transfers. */
function busiest(perGpu: readonly number[]): string {
  let g = 0;
  for (let i = 1; i < perGpu.length; i++) if (perGpu[i] > perGpu[g]) g = i;
  const mean = sum(perGpu) / Math.max(1, perGpu.length);
  return `${perGpu[g] ?? 0} (GPU ${g}); mean ${mean.toFixed(1)} per GPU`;
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

/**
 * The default sections with {@link migrationSection} after the summary: the page of a rebalance
 * from a previous placement.
 *
 * @example
 * ```ts
 * migrationSections().map((s) => s.id); // ["summary", "migration", "layers", "gpus", "placement", "heatmap"]
 * ```
 */
export function migrationSections(): ReportSection[] {
  const [summary, ...rest] = defaultSections();
  return [summary, migrationSection(), ...rest];
}

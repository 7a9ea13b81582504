// The transfer schedule of a rebalance as a chart: rounds across, GPUs down, each cell the kind of
// copy the GPU receives in that round (docs/cost.md, "The transfer schedule").
import type { TransferSchedule } from "../core/cost/schedule.js";
import type { TransferPlan } from "../core/evaluation/transfers.js";
import { AFTER_COLOR, BEFORE_COLOR } from "./colors.js";
import { escapeXml, formatNumber, type LegendItem, px, svgLegend, svgOpen } from "./svg.js";

/** Most columns drawn: longer schedules put several consecutive rounds in one column. */
const MAX_COLUMNS = 240;
const IDLE_COLOR = "#eeeeee";

/** Options of {@link svgTransferRounds}. */
export interface TransferRoundsOptions {
  numGpus: number;
  slotsPerGpu: number;
  /** GPUs per node: a line separates the nodes. */
  gpusPerNode?: number;
  width?: number;
}

/**
 * A rebalance's transfer schedule, rounds by GPUs: cell (round, GPU) is blue when the GPU
 * receives a copy from its own node in that round, orange when from another node, grey when it
 * receives none. Long schedules fold consecutive rounds into one column (an inter-node copy in
 * any of them colours it orange). Runs of equal cells are one rectangle each, so the chart stays
 * small.
 *
 * @param plan the transfers ({@link planTransfers})
 * @param schedule their rounds ({@link scheduleTransfers})
 * @param options the GPUs and slots per GPU the plan's slots belong to
 * @returns an SVG string
 * @example
 * ```ts
 * const t = makeTopology(4, 8, 1, 2, 4);
 * const plan = planTransfers(placementFromPhy2log([[0, 1, 2, 3, 0, 1, 2, 3]], 4),
 *   placementFromPhy2log([[0, 2, 2, 3, 0, 3, 2, 1]], 4), t);
 * svgTransferRounds(plan, scheduleTransfers(plan, t), { numGpus: 4, slotsPerGpu: 2 });
 * // '<svg ... class="chart transfer-rounds" ... data-rounds="1" ...'
 * ```
 */
export function svgTransferRounds(
  plan: TransferPlan,
  schedule: TransferSchedule,
  options: TransferRoundsOptions,
): string {
  const G = options.numGpus;
  const S = options.slotsPerGpu;
  const gpn = options.gpusPerNode ?? G;
  const width = options.width ?? 1120;
  const rounds = schedule.rounds;
  const per = Math.max(1, Math.ceil(rounds / MAX_COLUMNS));
  const columns = Math.max(1, Math.ceil(rounds / per));
  // kind[c * G + g]: 0 none, 1 intra-node, 2 inter-node (the slowest copy wins the cell).
  const kind = new Uint8Array(columns * G);
  for (let i = 0; i < plan.count; i++) {
    const r = schedule.roundOf[i];
    if (r < 0) continue;
    const cell = Math.floor(r / per) * G + Math.floor(plan.destination[i] / S);
    kind[cell] = Math.max(kind[cell], plan.kind[i]);
  }
  const left = 64;
  const top = 30;
  const rowH = Math.max(4, Math.min(14, 420 / G));
  const plotW = width - left - 16;
  const colW = plotW / columns;
  const height = Math.ceil(top + G * rowH + 40);
  const legend: LegendItem[] = [
    { name: "receives from its node", color: AFTER_COLOR },
    { name: "receives from another node", color: BEFORE_COLOR },
    { name: "receives nothing", color: IDLE_COLOR },
  ];
  const colors = [IDLE_COLOR, AFTER_COLOR, BEFORE_COLOR];
  const title = `Transfer schedule: ${rounds} rounds by ${G} GPUs`;
  let out = svgOpen(
    width,
    height,
    title,
    `Each round every GPU sends and receives at most one expert; a cell is the kind of copy a GPU receives in a round${per > 1 ? ` (${per} rounds per column)` : ""}. Estimated ${formatNumber(schedule.totalMs)} ms.`,
    "transfer-rounds",
    ` data-rounds="${rounds}" data-columns="${columns}"`,
  );
  out += svgLegend(legend, left, 12, plotW);
  for (let g = 0; g < G; g++) {
    const y = top + g * rowH;
    let c = 0;
    while (c < columns) {
      const k = kind[c * G + g];
      let end = c + 1;
      while (end < columns && kind[end * G + g] === k) end++;
      const from = c * per;
      const to = Math.min(rounds, end * per) - 1;
      out +=
        `<rect x="${px(left + c * colW)}" y="${px(y)}" width="${px((end - c) * colW)}" height="${px(rowH - 1)}" fill="${colors[k]}">` +
        `<title>${escapeXml(`GPU ${g}, rounds ${from}..${to}: ${k === 2 ? "receives from another node" : k === 1 ? "receives from its node" : "receives nothing"}`)}</title></rect>`;
      c = end;
    }
    if (G <= 64 || g % Math.ceil(G / 64) === 0) {
      out += `<text x="${px(left - 6)}" y="${px(y + rowH / 2)}" dy="0.32em" text-anchor="end" font-size="${rowH >= 10 ? 10 : 8}">GPU ${g}</text>`;
    }
    if (g > 0 && g % gpn === 0) {
      out += `<line x1="${px(left)}" x2="${px(left + plotW)}" y1="${px(y - 0.5)}" y2="${px(y - 0.5)}" stroke="#333" stroke-width="1"/>`;
    }
  }
  const bottom = top + G * rowH;
  out += `<text x="${px(left + plotW / 2)}" y="${px(bottom + 28)}" text-anchor="middle">round (0..${Math.max(0, rounds - 1)})</text>`;
  return `${out}</svg>`;
}

import type { LoadMatrix } from "../core/model/matrix.js";
import { HEAT_COLORS, HEAT_EDGES, heatBin } from "./colors.js";
import {
  escapeXml,
  formatNumber,
  type LegendItem,
  niceTicks,
  px,
  svgLegend,
  svgOpen,
} from "./svg.js";

/** Options of {@link svgHeatmap}. */
export interface HeatmapOptions {
  title?: string;
  /** Expert groups: faint separators between groups (default 1: none). */
  numGroups?: number;
  width?: number;
  /** Most columns drawn (default: one per 2 px of plot width); more experts are binned. */
  maxColumns?: number;
  /** Most rows drawn (default 160); more layers are binned. */
  maxRows?: number;
}

/**
 * A layer-by-expert heatmap of loads relative to each layer's mean expert load (so layers with
 * different traffic compare), in 9 colour bins with a legend. Cells of one colour are drawn as
 * one path, so the page stays small (a few dozen elements whatever the size); more experts (or
 * layers) than fit are binned, each cell showing the hottest of its bin, and the chart says so.
 *
 * @example
 * ```ts
 * svgHeatmap({ layers: 1, experts: 4, data: new Float64Array([1, 2, 3, 10]) });
 * // '<svg ... class="chart heatmap" ... data-rows="1" data-cols="4" data-cells="4" ...>'
 * ```
 */
export function svgHeatmap(loads: LoadMatrix, options: HeatmapOptions = {}): string {
  const width = options.width ?? 1120;
  const { layers: L, experts: E, data } = loads;
  const left = 64;
  const plotW = width - left - 20;
  const maxCols = Math.max(1, options.maxColumns ?? Math.floor(plotW / 2));
  const maxRows = Math.max(1, options.maxRows ?? 160);
  const kx = E > maxCols ? Math.ceil(E / maxCols) : 1;
  const ky = L > maxRows ? Math.ceil(L / maxRows) : 1;
  const cols = Math.ceil(E / kx);
  const rows = Math.ceil(L / ky);
  const cellW = plotW / cols;
  const cellH = Math.max(3, Math.min(16, 440 / rows));
  const top = 46;
  const plotH = rows * cellH;
  const height = Math.ceil(top + plotH + 48);

  // Relative load per cell (hottest of the bin, relative to its own layer's mean).
  const means = new Float64Array(L);
  for (let l = 0; l < L; l++) {
    let s = 0;
    for (let e = 0; e < E; e++) s += data[l * E + e];
    means[l] = s / E;
  }
  const paths: string[] = new Array(HEAT_COLORS.length).fill("");
  let hottest = 0;
  for (let r = 0; r < rows; r++) {
    let runBin = -1;
    let runStart = 0;
    const flush = (end: number) => {
      if (runBin >= 0) {
        const n = end - runStart;
        paths[runBin] += `M${runStart} ${r}h${n}v1h-${n}z`;
      }
    };
    for (let c = 0; c < cols; c++) {
      let rel = 0;
      for (let l = r * ky; l < Math.min(L, (r + 1) * ky); l++) {
        const m = means[l];
        for (let e = c * kx; e < Math.min(E, (c + 1) * kx); e++) {
          const v = m > 0 ? data[l * E + e] / m : 0;
          if (v > rel) rel = v;
        }
      }
      if (rel > hottest) hottest = rel;
      const bin = heatBin(rel);
      if (bin !== runBin) {
        flush(c);
        runBin = bin;
        runStart = c;
      }
    }
    flush(cols);
  }

  const binNote =
    kx > 1 || ky > 1
      ? ` Each cell is the hottest of ${kx > 1 ? `${kx} adjacent experts` : "one expert"}${ky > 1 ? ` over ${ky} adjacent layers` : ""}.`
      : "";
  const title = options.title ?? "Expert load per layer (relative to the layer mean)";
  let out = svgOpen(
    width,
    height,
    title,
    `Heatmap of ${L} layers by ${E} experts; colour is an expert's load divided by its layer's ` +
      `mean expert load (hottest ${formatNumber(hottest)}x the mean).${binNote}`,
    "heatmap",
    ` data-rows="${rows}" data-cols="${cols}" data-cells="${rows * cols}" data-bin-experts="${kx}" data-bin-layers="${ky}"`,
  );
  // Paths are in cell units (one unit per column and row) and scaled once: integer
  // coordinates keep the markup about half the size of pixel coordinates.
  out += `<g class="cells" shape-rendering="crispEdges" transform="translate(${px(left)} ${px(top)}) scale(${cellW.toFixed(4)} ${cellH.toFixed(4)})">`;
  for (let b = 0; b < HEAT_COLORS.length; b++) {
    if (paths[b]) {
      out += `<path data-bin="${b}" fill="${HEAT_COLORS[b]}" d="${paths[b]}"><title>${escapeXml(heatLabel(b))} the layer mean</title></path>`;
    }
  }
  out += `</g>`;
  const groups = options.numGroups ?? 1;
  if (groups > 1 && E % groups === 0 && groups < cols) {
    out += `<g class="group-sep">`;
    for (let g = 1; g < groups; g++) {
      const x = px(left + ((g * E) / groups / kx) * cellW);
      out += `<line x1="${x}" x2="${x}" y1="${px(top)}" y2="${px(top + plotH)}"/>`;
    }
    out += `</g>`;
  }
  out += `<rect class="frame" x="${px(left)}" y="${px(top)}" width="${px(plotW)}" height="${px(plotH)}" fill="none"/>`;
  // Axes: expert ids along x, layers down y.
  out += `<g class="axis x">`;
  for (const t of niceTicks(0, E - 1, Math.min(16, E))) {
    if (!Number.isInteger(t)) continue;
    const x = px(left + (t / kx + 0.5) * cellW);
    out += `<line class="tick" x1="${x}" x2="${x}" y1="${px(top + plotH)}" y2="${px(top + plotH + 4)}"/><text x="${x}" y="${px(top + plotH + 16)}" text-anchor="middle">${t}</text>`;
  }
  out += `<text class="label" x="${px(left + plotW / 2)}" y="${px(top + plotH + 38)}" text-anchor="middle">expert</text></g>`;
  out += `<g class="axis y">`;
  for (const t of niceTicks(0, L - 1, Math.min(8, L))) {
    if (!Number.isInteger(t)) continue;
    const y = px(top + (t / ky + 0.5) * cellH);
    out += `<text x="${px(left - 6)}" y="${y}" dy="0.32em" text-anchor="end">${t}</text>`;
  }
  out += `<text class="label" transform="translate(${px(left - 44)},${px(top + plotH / 2)}) rotate(-90)" text-anchor="middle">layer</text></g>`;
  const legend: LegendItem[] = HEAT_COLORS.map((color, b) => ({ name: heatLabel(b), color }));
  out += `<text class="legend-title" x="${px(left)}" y="16" dy="0.32em">load / layer mean:</text>`;
  out += svgLegend(legend, left + 128, 16, plotW - 128);
  if (binNote) {
    out += `<text class="note" x="${px(left + plotW)}" y="${px(top - 10)}" text-anchor="end">${escapeXml(binNote.trim())}</text>`;
  }
  return `${out}</svg>`;
}

/**
 * Legend text of heat bin `b`, e.g. "0.5-0.75x" or ">= 5x".
 *
 * @example
 * ```ts
 * heatLabel(0); // "< 0.25x"
 * ```
 */
export function heatLabel(b: number): string {
  if (b === 0) return `< ${HEAT_EDGES[0]}x`;
  if (b === HEAT_EDGES.length) return `>= ${HEAT_EDGES[b - 1]}x`;
  return `${HEAT_EDGES[b - 1]}-${HEAT_EDGES[b]}x`;
}

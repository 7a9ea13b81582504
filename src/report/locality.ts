import type { LocalityMetrics } from "../core/routing/summary.js";
import { AFTER_COLOR, BEFORE_COLOR, HEAT_COLORS, heatBin } from "./colors.js";
import { heatLabel } from "./heatmap.js";
import { figure, formatRatio, type ReportSection } from "./html.js";
import type { ReportModel } from "./model.js";
import {
  escapeXml,
  formatNumber,
  type LegendItem,
  legendRows,
  px,
  svgLegend,
  svgLineChart,
  svgOpen,
} from "./svg.js";

/** Nodes drawn one per cell up to this many; more are summed in blocks. */
const MAX_CELLS = 64;
/** Cells get their copy count written in them up to this many nodes. */
const LABELLED_NODES = 16;

/**
 * A node-by-node heatmap of dispatch traffic: row = source node, column = destination node,
 * colour = token copies relative to the mean off-diagonal cell (the heat scale of the load
 * heatmap), the diagonal (no inter-node copy) grey. Beyond {@link MAX_CELLS} nodes, blocks of
 * nodes are summed and the chart says so; up to {@link LABELLED_NODES} each cell shows its count.
 *
 * @param traffic `traffic[src][dst]`, square
 * @param title the chart's title
 * @returns the SVG
 * @example
 * ```ts
 * svgTrafficHeatmap([[0, 4], [2, 0]], "Traffic");
 * // '<svg ... class="chart traffic-heatmap" ... data-nodes="2" data-cells="2" ...>'
 * ```
 */
export function svgTrafficHeatmap(
  traffic: ReadonlyArray<ReadonlyArray<number>>,
  title: string,
): string {
  const n = traffic.length;
  const k = n > MAX_CELLS ? Math.ceil(n / MAX_CELLS) : 1;
  const cells = Math.ceil(n / k);
  const sums = new Float64Array(cells * cells);
  let total = 0;
  let offCells = 0;
  for (let s = 0; s < n; s++) {
    for (let d = 0; d < n; d++) {
      const v = traffic[s][d];
      sums[Math.floor(s / k) * cells + Math.floor(d / k)] += v;
    }
  }
  for (let r = 0; r < cells; r++) {
    for (let c = 0; c < cells; c++) {
      if (r === c && k === 1) continue;
      total += sums[r * cells + c];
      offCells++;
    }
  }
  const mean = offCells > 0 ? total / offCells : 0;
  const left = 70;
  const size = Math.min(560, Math.max(160, cells * 28));
  const cell = size / cells;
  const width = Math.max(720, left + size + 24);
  const legend: LegendItem[] = HEAT_COLORS.map((color, b) => ({ name: heatLabel(b), color }));
  const top = 34 + 20 * legendRows(legend, width - 108);
  const height = top + size + 50;
  const paths: string[] = new Array(HEAT_COLORS.length).fill("");
  let diagonal = "";
  let labels = "";
  let hottest = 0;
  for (let r = 0; r < cells; r++) {
    for (let c = 0; c < cells; c++) {
      const v = sums[r * cells + c];
      if (r === c && k === 1) {
        diagonal += `M${c} ${r}h1v1h-1z`;
        continue;
      }
      const rel = mean > 0 ? v / mean : 0;
      if (rel > hottest) hottest = rel;
      paths[heatBin(rel)] += `M${c} ${r}h1v1h-1z`;
      if (n <= LABELLED_NODES) {
        const dark = heatBin(rel) >= 5;
        labels += `<text x="${px(left + (c + 0.5) * cell)}" y="${px(top + (r + 0.5) * cell)}" dy="0.32em" text-anchor="middle"${dark ? ' fill="#fff"' : ""}>${escapeXml(formatNumber(v))}</text>`;
      }
    }
  }
  const note = k > 1 ? ` Each cell sums ${k} x ${k} nodes.` : "";
  let out = svgOpen(
    width,
    height,
    title,
    `Heatmap of token copies sent from each node (rows) to each other node (columns), relative to the mean off-diagonal cell (hottest ${formatNumber(hottest)}x the mean).${note}`,
    "traffic-heatmap",
    ` data-nodes="${n}" data-cells="${cells}" data-bin-nodes="${k}"`,
  );
  out += `<g class="cells" shape-rendering="crispEdges" transform="translate(${px(left)} ${px(top)}) scale(${cell.toFixed(4)})">`;
  for (let b = 0; b < HEAT_COLORS.length; b++) {
    if (paths[b]) out += `<path data-bin="${b}" fill="${HEAT_COLORS[b]}" d="${paths[b]}"/>`;
  }
  if (diagonal) {
    out += `<path class="diagonal" fill="#eaeef2" d="${diagonal}"><title>same node: no inter-node copy</title></path>`;
  }
  out += `</g>${labels}`;
  out += `<rect class="frame" x="${px(left)}" y="${px(top)}" width="${px(size)}" height="${px(size)}" fill="none"/>`;
  const step = Math.max(1, Math.ceil(cells / 16));
  out += `<g class="axis x">`;
  for (let c = 0; c < cells; c += step) {
    out += `<text x="${px(left + (c + 0.5) * cell)}" y="${px(top + size + 16)}" text-anchor="middle">${c * k}</text>`;
  }
  out += `<text class="label" x="${px(left + size / 2)}" y="${px(top + size + 38)}" text-anchor="middle">destination node</text></g>`;
  out += `<g class="axis y">`;
  for (let r = 0; r < cells; r += step) {
    out += `<text x="${px(left - 6)}" y="${px(top + (r + 0.5) * cell)}" dy="0.32em" text-anchor="end">${r * k}</text>`;
  }
  out += `<text class="label" transform="translate(${px(left - 44)},${px(top + size / 2)}) rotate(-90)" text-anchor="middle">source node</text></g>`;
  out += `<text class="legend-title" x="${px(8)}" y="16" dy="0.32em">copies / mean:</text>`;
  out += svgLegend(legend, 100, 16, width - 108);
  return `${out}</svg>`;
}

/**
 * The report section of `model.locality` (`eplb report --routing`): remote nodes per token
 * (and the previous placement's), the cross-node share, remote nodes per layer, and the
 * node-by-node traffic heatmap. Empty without a routing.
 *
 * @returns the section
 * @example
 * ```ts
 * localitySection().id; // "locality"
 * ```
 */
export function localitySection(): ReportSection {
  return {
    id: "locality",
    title: "Dispatch locality",
    render(m: ReportModel): string {
      const x = m.locality;
      if (!x) return "";
      return renderLocality(x);
    },
  };
}

function renderLocality(x: LocalityMetrics): string {
  const p = x.placement;
  const q = x.previous;
  const r = x.routing;
  const worst = (v: number[]) => v.reduce((a, b) => Math.max(a, b), 0);
  const rows: [string, string, string?][] = [
    [
      "Routing",
      `${r.tokens} tokens x ${r.layers} layers, top-${r.k}; source node ${r.sources === "ranks" ? "from each token's rank" : "unknown: spread evenly over nodes"}`,
    ],
    [
      "Remote nodes per token, mean",
      formatRatio(p.remoteNodesPerToken),
      q && formatRatio(q.remoteNodesPerToken),
    ],
    [
      "Remote nodes per token, worst layer",
      formatRatio(worst(p.perLayer)),
      q && formatRatio(worst(q.perLayer)),
    ],
    [
      "Choices served off the token's node",
      `${(100 * p.crossNodeShare).toFixed(1)}%`,
      q && `${(100 * q.crossNodeShare).toFixed(1)}%`,
    ],
  ];
  const head = q
    ? `<tr><th scope="col"></th><th scope="col">this placement</th><th scope="col">previous</th></tr>`
    : "";
  const table =
    `<table class="summary-table"><caption>Dispatch under the rule of docs/locality.md: a token is sent once to each remote node serving one of its experts</caption>` +
    `<thead>${head}</thead><tbody>` +
    rows
      .map(
        ([a, b, c]) =>
          `<tr><th scope="row">${escapeXml(a)}</th><td${q && c === undefined ? ' colspan="2"' : ""}>${escapeXml(b)}</td>${q && c !== undefined ? `<td>${escapeXml(c)}</td>` : ""}</tr>`,
      )
      .join("") +
    `</tbody></table>`;
  const series = [{ name: "this placement", values: p.perLayer, color: AFTER_COLOR }];
  if (q) series.unshift({ name: "previous", values: q.perLayer, color: BEFORE_COLOR });
  const perLayer = figure(
    svgLineChart({
      title: "Remote nodes per token, per layer",
      description: "Mean over tokens of the remote nodes each token is sent to, per layer.",
      series,
      xLabel: "layer",
      yLabel: "remote nodes per token",
      yMin: 0,
      className: "line-chart locality-layers",
    }),
    "Mean over tokens of the remote nodes a token is sent to, per layer: fewer is less inter-node traffic.",
  );
  const heat = figure(
    svgTrafficHeatmap(p.traffic, "Token copies between nodes"),
    "Token copies sent from each node (row) to each other node (column), summed over tokens and layers; the diagonal (same node) needs no inter-node copy.",
  );
  return table + perLayer + heat;
}

import { AFTER_COLOR, BEFORE_COLOR, BOUND_COLOR } from "./colors.js";
import { svgGpuBars } from "./gpu-bars.js";
import { svgHeatmap } from "./heatmap.js";
import { svgLayerBalance } from "./layer-balance.js";
import type { ReportModel } from "./model.js";
import { svgPlacementGrid } from "./placement-grid.js";
import { escapeXml, formatNumber, svgLineChart } from "./svg.js";

/**
 * One section of the report: an anchor id, a heading and its body. Sections are the extension
 * point: a caller (e.g. the simulator) appends its own, whose `render` may ignore the model and
 * draw data it captured. `render` returns trusted markup: build it with {@link escapeXml} and
 * the chart helpers, which escape every text they are given.
 */
export interface ReportSection {
  /** Unique, used as the anchor (`#id`) and in the navigation. */
  id: string;
  title: string;
  render(model: ReportModel): string;
}

/** Options of {@link htmlReport}. */
export interface HtmlReportOptions {
  /** Replace the default sections (see {@link defaultSections}). */
  sections?: ReadonlyArray<ReportSection>;
  /** Sections appended after the default ones (or after `sections`). */
  extraSections?: ReadonlyArray<ReportSection>;
}

/**
 * A chart with its caption, as an HTML `<figure>`; `caption` is plain text (escaped here).
 *
 * @example
 * ```ts
 * figure("<svg>...</svg>", "Layer 3 <worst>");
 * // '<figure><svg>...</svg><figcaption>Layer 3 &lt;worst&gt;</figcaption></figure>'
 * ```
 */
export function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${escapeXml(caption)}</figcaption></figure>`;
}

/**
 * A ratio such as balancedness with three decimals, or "-" when it is not a number.
 *
 * @example
 * ```ts
 * formatRatio(0.93412); // "0.934"
 * formatRatio(Number.NaN); // "-"
 * ```
 */
export function formatRatio(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : "-";
}

function kpi(label: string, before: string | undefined, after: string, hint: string): string {
  const value =
    before === undefined
      ? `<span class="after">${escapeXml(after)}</span>`
      : `<span class="before">${escapeXml(before)}</span><span class="arrow" aria-hidden="true">&#8594;</span><span class="after">${escapeXml(after)}</span>`;
  return `<div class="kpi"><div class="kpi-label">${escapeXml(label)}</div><div class="kpi-value">${value}</div><div class="kpi-hint">${escapeXml(hint)}</div></div>`;
}

function row(cells: ReadonlyArray<string>, header = false): string {
  const [first, ...rest] = cells;
  return `<tr><th scope="row">${escapeXml(first)}</th>${rest
    .map((c) => (header ? `<th scope="col">${escapeXml(c)}</th>` : `<td>${escapeXml(c)}</td>`))
    .join("")}</tr>`;
}

/** The summary: headline figures and the table of everything `eplb plan` reports. */
function renderSummary(m: ReportModel): string {
  const b = m.before;
  const a = m.after;
  const time = m.timeMs !== undefined ? `${m.timeMs.toFixed(1)} ms` : "-";
  const kpis =
    `<div class="kpis">` +
    kpi(
      "Balancedness (mean)",
      formatRatio(b.balancedness),
      formatRatio(a.balancedness),
      "mean / max GPU load; 1 is perfect",
    ) +
    kpi(
      "Worst layer",
      formatRatio(b.worstBalancedness),
      formatRatio(a.worstBalancedness),
      "lowest balancedness of any layer",
    ) +
    kpi(
      "Max load / lower bound",
      formatRatio(b.maxOverLowerBound),
      formatRatio(a.maxOverLowerBound),
      "mean over layers; 1 is optimal",
    ) +
    kpi(
      "Duplicate replicas",
      undefined,
      String(a.duplicateGpus),
      "(layer, GPU) pairs holding one expert twice",
    ) +
    `</div>`;
  const table =
    `<table class="summary-table"><caption>Summary: before EPLB (experts in order, one slot each) and after</caption>` +
    `<thead>${row(["", "before EPLB", "after EPLB"], true)}</thead><tbody>` +
    row([
      "Balancedness, mean over layers",
      formatRatio(b.balancedness),
      formatRatio(a.balancedness),
    ]) +
    row([
      "Balancedness, worst layer",
      formatRatio(b.worstBalancedness),
      formatRatio(a.worstBalancedness),
    ]) +
    row([
      "Max GPU load / lower bound, mean",
      formatRatio(b.maxOverLowerBound),
      formatRatio(a.maxOverLowerBound),
    ]) +
    row([
      "Max GPU load / lower bound, worst layer",
      formatRatio(b.worstMaxOverLowerBound),
      formatRatio(a.worstMaxOverLowerBound),
    ]) +
    row([
      "Node balancedness, mean",
      formatRatio(b.nodeBalancedness),
      formatRatio(a.nodeBalancedness),
    ]) +
    row(["GPUs holding two replicas of one expert", "0", String(a.duplicateGpus)]) +
    `</tbody></table>`;
  const shape =
    `<table class="shape-table"><caption>Plan and shape</caption><tbody>` +
    row(["Policy", `${m.policy ?? "-"}${m.mode ? ` (${m.mode})` : ""}`]) +
    row(["Layers", String(m.layers)]) +
    row(["Experts per layer", String(m.numExperts)]) +
    row(["Slots per layer", `${m.numReplicas} (${m.numReplicas - m.numExperts} redundant)`]) +
    row(["Expert groups", String(m.numGroups)]) +
    row(["Nodes x GPUs per node", `${m.numNodes} x ${m.gpusPerNode}`]) +
    row(["Slots per GPU", String(m.slotsPerGpu)]) +
    row(["Planning time", time]) +
    `</tbody></table>`;
  return `${kpis}<div class="tables">${table}${shape}</div>`;
}

function renderLayers(m: ReportModel): string {
  const a = m.after;
  const b = m.before;
  let details = "";
  for (let l = 0; l < m.layers; l++) {
    details += row([
      String(l),
      formatRatio(b.balancednessPerLayer[l]),
      formatRatio(a.balancednessPerLayer[l]),
      formatNumber(b.maxGpuLoad[l]),
      formatNumber(a.maxGpuLoad[l]),
      formatNumber(a.lowerBound[l]),
      formatRatio(a.maxOverLowerBoundPerLayer[l]),
      String(m.duplicatesPerLayer[l]),
    ]);
  }
  return (
    figure(
      svgLayerBalance(b.balancednessPerLayer, a.balancednessPerLayer),
      "Balancedness of every layer: mean GPU load divided by the busiest GPU's load (1 is perfect). " +
        "Before: experts in order, one slot each (expert parallelism without EPLB). After: the plan.",
    ) +
    figure(
      svgLineChart({
        title: "Max GPU load / lower bound per layer",
        description:
          "How far each layer's busiest GPU is from the lower bound no placement with these slots can beat (1 is optimal).",
        series: [{ name: "after EPLB", values: a.maxOverLowerBoundPerLayer, color: AFTER_COLOR }],
        refLines: [{ value: 1, label: "lower bound", color: BOUND_COLOR, dash: "2 3" }],
        xLabel: "layer",
        yLabel: "max / lower bound",
        yMin: 1,
        height: 240,
        className: "bound-gap",
      }),
      "Gap to the lower bound per layer after EPLB: max(total load / GPUs, the smallest achievable " +
        "per-replica load). Values near 1 mean no placement could do much better with these slots.",
    ) +
    `<details><summary>Per-layer figures (${m.layers} layers)</summary><div class="scroll"><table class="layers-table">` +
    `<thead>${row(["layer", "balancedness before", "after", "max GPU load before", "after", "lower bound", "max / bound after", "duplicate GPUs"], true)}</thead>` +
    `<tbody>${details}</tbody></table></div></details>`
  );
}

function renderGpuBars(m: ReportModel): string {
  let out = `<p class="lead">The layers shown: ${escapeXml(m.detailLayers.map((d) => `${d.layer} (${d.reason})`).join(", "))}.</p>`;
  for (const d of m.detailLayers) {
    const G = m.numGpus;
    const before = m.beforeGpuLoads.subarray(d.layer * G, (d.layer + 1) * G);
    const after = m.afterGpuLoads.subarray(d.layer * G, (d.layer + 1) * G);
    out += figure(
      svgGpuBars(d.layer, before, after, {
        lowerBound: m.after.lowerBound[d.layer],
        gpusPerNode: m.numNodes > 1 ? m.gpusPerNode : undefined,
        reason: d.reason,
      }),
      `Layer ${d.layer}, ${d.reason}: balancedness ${formatRatio(m.before.balancednessPerLayer[d.layer])} before, ` +
        `${formatRatio(m.after.balancednessPerLayer[d.layer])} after. Bars are GPUs` +
        `${m.numNodes > 1 ? " (thin lines separate nodes)" : ""}; red marks the busiest GPU, ` +
        `which sets the layer's speed.`,
    );
  }
  return out;
}

function renderPlacement(m: ReportModel): string {
  let out = "";
  const P = m.numReplicas;
  const E = m.numExperts;
  for (const d of m.detailLayers) {
    const l = d.layer;
    out += figure(
      svgPlacementGrid(l, m.placement.phy2log.subarray(l * P, (l + 1) * P), {
        numExperts: E,
        numGpus: m.numGpus,
        numNodes: m.numNodes,
        numGroups: m.numGroups,
        logcnt: m.placement.logcnt.subarray(l * E, (l + 1) * E),
        expertLoads: m.loads.data.subarray(l * E, (l + 1) * E),
        reason: d.reason,
        previousSlots: m.migration?.previous.phy2log.subarray(l * P, (l + 1) * P),
      }),
      `Layer ${l}, ${d.reason}: each column is a GPU, each cell a slot holding the expert whose ` +
        `id it shows (hover for replicas and load). ` +
        `${m.numGroups > 1 ? "The hue says the expert's group. " : ""}` +
        `Bold ids are experts with several replicas.` +
        `${m.migration ? ` Dashed outlines: slots whose expert changed since the previous placement (${m.migration.changedPerLayer[l]} in this layer).` : ""}`,
    );
  }
  return out;
}

function renderHeatmap(m: ReportModel): string {
  const svg = svgHeatmap(m.loads, { numGroups: m.numGroups });
  const binned = /data-bin-experts="(\d+)" data-bin-layers="(\d+)"/.exec(svg);
  const note =
    binned && (binned[1] !== "1" || binned[2] !== "1")
      ? ` Downsampled to fit: each cell is the hottest of ${binned[1]} expert(s) over ${binned[2]} layer(s).`
      : "";
  return figure(
    svg,
    `Load of every expert in every layer divided by that layer's mean expert load: hot experts ` +
      `(dark) are the ones EPLB replicates.${m.numGroups > 1 ? " Thin lines separate expert groups." : ""}${note}`,
  );
}

/**
 * The report's default sections, in page order: summary, balancedness per layer, GPU loads of
 * the detail layers, placement grids, load heatmap.
 *
 * @example
 * ```ts
 * defaultSections().map((s) => s.id); // ["summary", "layers", "gpus", "placement", "heatmap"]
 * ```
 */
export function defaultSections(): ReportSection[] {
  return [
    { id: "summary", title: "Summary", render: renderSummary },
    { id: "layers", title: "Balancedness per layer", render: renderLayers },
    { id: "gpus", title: "GPU loads in the worst layers", render: renderGpuBars },
    { id: "placement", title: "Placement grid", render: renderPlacement },
    { id: "heatmap", title: "Expert load heatmap", render: renderHeatmap },
  ];
}

/**
 * The whole report as one self-contained HTML page: inline CSS and SVG, no scripts, no external
 * resources (a Content-Security-Policy forbids them), readable from 1280 px wide down to a
 * phone. Sections come from {@link defaultSections} plus `extraSections`.
 *
 * @example
 * ```ts
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const { placement } = rebalanceExperts(loads, 8, 1, 1, 8);
 * const html = htmlReport(buildReportModel({ loads, placement, numGpus: 8 }));
 * // "<!doctype html>\n<html lang=\"en\">..."
 * ```
 */
export function htmlReport(model: ReportModel, options: HtmlReportOptions = {}): string {
  const sections = [...(options.sections ?? defaultSections()), ...(options.extraSections ?? [])];
  const src = model.sources;
  const meta = [
    src.loads ? `loads: ${src.loads}` : "",
    src.placement ? `placement: ${src.placement}` : "",
    src.previous ? `previous placement: ${src.previous}` : "",
    `${model.layers} layers, ${model.numExperts} experts, ${model.numReplicas} slots on ${model.numGpus} GPUs` +
      (model.numNodes > 1 ? ` in ${model.numNodes} nodes` : ""),
    model.policy ? `policy ${model.policy}${model.mode ? ` (${model.mode})` : ""}` : "",
  ].filter((s) => s !== "");
  const nav = sections
    .map((s) => `<li><a href="#${escapeXml(s.id)}">${escapeXml(s.title)}</a></li>`)
    .join("");
  const body = sections
    .map(
      (s) =>
        `<section id="${escapeXml(s.id)}" aria-labelledby="${escapeXml(s.id)}-h"><h2 id="${escapeXml(s.id)}-h">${escapeXml(s.title)}</h2>${s.render(model)}</section>`,
    )
    .join("\n");
  const footer = `Generated by ${escapeXml(model.generator ?? "eplb")}. Self-contained: no scripts, no external resources. Balancedness = mean GPU load / max GPU load; before = experts in order, one slot each.`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="${escapeXml(model.generator ?? "eplb")}">
<title>${escapeXml(model.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${escapeXml(model.title)}</h1><p class="meta">${meta.map((s) => `<span>${escapeXml(s)}</span>`).join("")}</p>
<nav aria-label="Sections"><ul>${nav}</ul></nav></header>
<main>
${body}
</main>
<footer>${footer}</footer>
</body>
</html>
`;
}

const CSS = `
:root{--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--before:${BEFORE_COLOR};--after:${AFTER_COLOR}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 20px}
header{padding-top:28px}
h1{font-size:28px;margin:0 0 6px;letter-spacing:-.01em}
h2{font-size:20px;margin:0 0 14px}
.meta{margin:0;color:var(--muted);font-size:14px}
.meta span:not(:last-child)::after{content:"\\00b7";margin:0 8px;color:#8c959f}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:6px 8px;padding:0;margin:14px 0 18px}
nav a{display:inline-block;padding:4px 12px;border:1px solid var(--line);border-radius:999px;background:var(--card);color:var(--fg);text-decoration:none;font-size:14px}
nav a:hover,nav a:focus{border-color:var(--after);color:var(--after)}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 20px 16px;margin:0 0 20px}
figure{margin:0 0 18px}
figure:last-child{margin-bottom:0}
figcaption{color:var(--muted);font-size:13px;margin-top:4px;max-width:1000px}
.lead{color:var(--muted);font-size:14px;margin:-6px 0 12px}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit;font-size:12px}
svg.chart text:not([fill]){fill:#3d444d}
svg.chart .axis text:not([fill]){fill:var(--muted)}
svg.chart .axis text{font-size:11px}
svg.chart .label{font-size:12px}
svg.chart .note:not([fill]){fill:var(--muted)}
svg.chart .note{font-style:italic;font-size:11px}
svg.chart .grid{stroke:#eaeef2}
svg.chart .domain,svg.chart .tick{stroke:#8c959f}
svg.chart .sep{stroke:#afb8c1;stroke-dasharray:2 3}
svg.chart .panel-title,svg.chart .node{font-weight:600;font-size:13px}
svg.chart .gpu:not([fill]){fill:var(--muted)}
svg.chart .gpu{font-size:10px}
svg.chart .node-box{fill:#f6f8fa;stroke:#d0d7de}
svg.chart .cells rect.moved{stroke:#111;stroke-width:2;stroke-dasharray:3 2}
svg.chart .cells rect.dup{stroke:#b2182b;stroke-width:2.5;stroke-dasharray:none}
svg.chart .cell-labels text{pointer-events:none}
svg.chart .frame{stroke:#8c959f}
svg.chart .legend rect{stroke:rgba(31,35,40,.25);stroke-width:.5}
svg.chart .legend-title{font-weight:600}
svg.chart .group-sep line{stroke:#1f2328;stroke-width:1;opacity:.45}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px;margin-bottom:18px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfd}
.kpi-label{font-size:13px;color:var(--muted);font-weight:600}
.kpi-value{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;margin:2px 0}
.kpi-value .before{color:var(--before)}
.kpi-value .after{color:var(--after)}
.kpi-value .arrow{color:#8c959f;margin:0 8px;font-weight:400}
.kpi-hint{font-size:12px;color:var(--muted)}
.tables{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:20px;align-items:start}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:0 0 6px}
th,td{padding:5px 10px;border-bottom:1px solid #eaeef2;text-align:right}
th[scope=row]{text-align:left;font-weight:500}
thead th{font-weight:600;color:var(--muted);border-bottom:1px solid var(--line)}
tbody tr:nth-child(even){background:#fafbfc}
.summary-table td:nth-child(2){color:var(--before)}
.summary-table td:nth-child(3){color:var(--after);font-weight:600}
details{margin-top:8px}
summary{cursor:pointer;color:var(--after);font-size:14px}
.scroll{max-height:420px;overflow:auto;margin-top:8px}
footer{color:var(--muted);font-size:12px;padding-bottom:28px}
@media (max-width:800px){.tables{grid-template-columns:1fr}}
`;

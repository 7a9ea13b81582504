import { AFTER_COLOR, BEFORE_COLOR, BOUND_COLOR, HOT_COLOR, MEAN_COLOR } from "./colors.js";
import {
  barPanel,
  escapeXml,
  type Frame,
  formatNumber,
  px,
  svgLegend,
  svgOpen,
  svgRefLines,
  svgYAxis,
} from "./svg.js";

/** Options of {@link svgGpuBars}. */
export interface GpuBarsOptions {
  /** The layer's lower bound of the max GPU load (drawn as a line); omit to leave it out. */
  lowerBound?: number;
  /** GPUs per node: thin separators between nodes. */
  gpusPerNode?: number;
  /** Why this layer is shown, e.g. "worst after EPLB". */
  reason?: string;
  width?: number;
  height?: number;
}

/** GPU loads reduced to at most `maxBars` bars (each the busiest of `k` GPUs). */
function binMax(values: ArrayLike<number>, maxBars: number): { values: number[]; k: number } {
  const n = values.length;
  const k = n > maxBars ? Math.ceil(n / maxBars) : 1;
  const out: number[] = [];
  for (let i = 0; i < n; i += k) {
    let m = Number.NEGATIVE_INFINITY;
    for (let j = i; j < Math.min(n, i + k); j++) m = Math.max(m, values[j]);
    out.push(m);
  }
  return { values: out, k };
}

/**
 * Per-GPU load of one layer before EPLB (left) and after (right) on a shared scale, with the
 * mean GPU load and the lower bound of the max as lines and the busiest GPU in red. More GPUs
 * than fit at 2 px per bar are shown as the busiest of each run of `k` GPUs (said in the chart).
 *
 * @example
 * ```ts
 * svgGpuBars(3, [10, 2, 3, 1], [4, 4, 4, 4], { lowerBound: 4, gpusPerNode: 2 });
 * // '<svg ... class="chart gpu-bars" ... aria-label="Layer 3: load per GPU before and after EPLB" ...>...'
 * ```
 */
export function svgGpuBars(
  layer: number,
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  options: GpuBarsOptions = {},
): string {
  const width = options.width ?? 1120;
  const height = options.height ?? 280;
  const numGpus = Math.max(before.length, after.length);
  const gap = 70;
  const left = 64;
  const panelW = (width - left - 16 - gap) / 2;
  const maxBars = Math.max(1, Math.floor(panelW / 2));
  const b = binMax(before, maxBars);
  const a = binMax(after, maxBars);
  const k = Math.max(b.k, a.k);
  let hi = 0;
  let total = 0;
  for (let i = 0; i < numGpus; i++) {
    hi = Math.max(hi, before[i] ?? 0, after[i] ?? 0);
    total += after[i] ?? 0;
  }
  const mean = numGpus > 0 ? total / numGpus : 0;
  const lb = options.lowerBound;
  if (lb !== undefined && Number.isFinite(lb)) hi = Math.max(hi, lb);
  const yMax = hi > 0 ? hi * 1.08 : 1;
  const top = 62;
  const frameH = height - top - 40;
  const frames: Frame[] = [
    { x: left, y: top, w: panelW, h: frameH, yMin: 0, yMax },
    { x: left + panelW + gap, y: top, w: panelW, h: frameH, yMin: 0, yMax },
  ];
  const label = (i: number) =>
    k === 1 ? String(i) : `${i * k}-${Math.min(numGpus, (i + 1) * k) - 1}`;
  // Axis labels name a bin by its first GPU; tooltips give the whole range.
  const categories = Array.from({ length: Math.ceil(numGpus / k) }, (_, i) => String(i * k));
  const gpn = options.gpusPerNode;
  const nodeOf = (g: number) => (gpn && gpn > 0 ? ` (node ${Math.floor(g / gpn)})` : "");
  const tip = (i: number, v: number) =>
    `${k === 1 ? `GPU ${i}${nodeOf(i)}` : `GPUs ${label(i)} (busiest)`}: ${formatNumber(v)}` +
    (mean > 0 ? `, ${formatNumber(v / mean)}x mean` : "");
  const maxOf = (v: number[]) => v.reduce((m, x, i) => (x > v[m] ? i : m), 0);
  const note = k > 1 ? ` Each bar is the busiest of ${k} consecutive GPUs.` : "";
  const reason = options.reason ? ` (${options.reason})` : "";
  const title = `Layer ${layer}: load per GPU before and after EPLB`;
  const refs = [
    { value: mean, label: `mean ${formatNumber(mean)}`, color: MEAN_COLOR, dash: "5 4" },
    ...(lb !== undefined && Number.isFinite(lb)
      ? [{ value: lb, label: `lower bound ${formatNumber(lb)}`, color: BOUND_COLOR, dash: "2 3" }]
      : []),
  ];
  let out = svgOpen(
    width,
    height,
    title,
    `Load of each of ${numGpus} GPUs in layer ${layer}${reason}, before EPLB (experts in order, ` +
      `one slot each; max ${formatNumber(Math.max(...b.values, 0))}) and after ` +
      `(max ${formatNumber(Math.max(...a.values, 0))}), with the mean GPU load ${formatNumber(mean)}` +
      (lb !== undefined ? ` and the lower bound ${formatNumber(lb)}` : "") +
      `.${note}`,
    "gpu-bars",
    ` data-layer="${layer}" data-bars="${b.values.length + a.values.length}"`,
  );
  const sep = gpn && gpn % k === 0 ? gpn / k : undefined;
  const panels = [
    { name: "before EPLB", data: b.values, color: BEFORE_COLOR },
    { name: "after EPLB", data: a.values, color: AFTER_COLOR },
  ];
  for (let p = 0; p < 2; p++) {
    const f = frames[p];
    const { name, data, color } = panels[p];
    out += `<g class="panel" data-panel="${p === 0 ? "before" : "after"}">`;
    out += `<text class="panel-title" x="${px(f.x)}" y="${px(f.y - 10)}">${escapeXml(name)}, max ${escapeXml(formatNumber(Math.max(...data, 0)))}${mean > 0 ? ` (${escapeXml(formatNumber(Math.max(...data, 0) / mean))}x mean)` : ""}</text>`;
    out += svgYAxis(f, p === 0 ? "GPU load" : undefined, 4);
    out += barPanel(
      f,
      categories,
      [{ name, values: data, color }],
      (_s, i, v) => tip(i, v),
      data.length > 0 ? { index: maxOf(data), color: HOT_COLOR } : undefined,
      sep,
    );
    out += svgRefLines(f, refs);
    out += `</g>`;
  }
  out += svgLegend(
    [
      { name: "before EPLB", color: BEFORE_COLOR },
      { name: "after EPLB", color: AFTER_COLOR },
      { name: "busiest GPU", color: HOT_COLOR },
      ...refs.map((r) => ({ ...r, name: r.label, line: true })),
    ],
    left,
    14,
  );
  if (note) {
    out += `<text class="note" x="${px(width - 16)}" y="14" dy="0.32em" text-anchor="end">${escapeXml(note.trim())}</text>`;
  }
  out += `<text class="label" x="${px(width / 2)}" y="${px(height - 4)}" text-anchor="middle">GPU</text>`;
  return `${out}</svg>`;
}

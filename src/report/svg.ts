/**
 * String-building primitives for the HTML report: escaping, number formatting, scales, axes and
 * the two generic charts (`svgLineChart`, `svgBarChart`) that the report's own charts and later
 * sections (simulation, sweeps) reuse. Pure: no DOM, no Node imports; every function returns
 * markup as a string and escapes every piece of text it puts in it.
 */

/**
 * Escapes text for HTML/SVG content and attribute values (`&`, `<`, `>`, `"`, `'`).
 *
 * @example
 * ```ts
 * escapeXml(`<a href="x">&'`); // "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
 * ```
 */
export function escapeXml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * A number for labels: 3 significant digits, with k/M/G suffixes for large values, so token
 * counts and normalised loads both read well.
 *
 * @example
 * ```ts
 * formatNumber(1234567); // "1.23M"
 * formatNumber(0.93412); // "0.934"
 * formatNumber(12);      // "12"
 * ```
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e9) return `${trim((x / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${trim((x / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${trim((x / 1e3).toPrecision(3))}k`;
  if (a >= 1000) return String(Math.round(x));
  if (a === 0) return "0";
  if (Number.isInteger(x)) return String(x);
  return trim(x.toPrecision(3));
}

function trim(s: string): string {
  return s.includes("e") || !s.includes(".") ? s : s.replace(/\.?0+$/, "");
}

/** Coordinates rounded to 0.1 px: enough for any screen, and keeps the file small. */
export function px(x: number): string {
  return String(Math.round(x * 10) / 10);
}

/**
 * About `count` round tick values covering `[min, max]` (steps of 1, 2 or 5 times a power of
 * ten).
 *
 * @example
 * ```ts
 * niceTicks(0, 1, 5);    // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * niceTicks(0, 137, 4);  // [0, 50, 100]
 * ```
 */
export function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min) || !Number.isFinite(min) || !Number.isFinite(max)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm > 5 ? 10 : norm > 2 ? 5 : norm > 1 ? 2 : 1) * mag;
  const out: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let i = first; i * step <= max + step * 1e-9; i++) {
    out.push(Number((i * step).toPrecision(12)));
  }
  // A span far below the values' own precision can round every multiple out of the range.
  return out.length > 0 ? out : [min];
}

/** A horizontal reference line (mean, lower bound, ideal) drawn across a chart. */
export interface RefLine {
  value: number;
  label: string;
  color: string;
  /** SVG stroke-dasharray, e.g. "6 4". */
  dash?: string;
}

/** A plot rectangle and the value range mapped onto its height. */
export interface Frame {
  x: number;
  y: number;
  w: number;
  h: number;
  yMin: number;
  yMax: number;
}

/**
 * The y pixel of value `v` in a frame (clamped to the frame).
 *
 * @example
 * ```ts
 * yOf({ x: 0, y: 10, w: 100, h: 100, yMin: 0, yMax: 2 }, 1); // 60
 * ```
 */
export function yOf(f: Frame, v: number): number {
  const span = f.yMax - f.yMin || 1;
  const t = (Math.min(f.yMax, Math.max(f.yMin, v)) - f.yMin) / span;
  return f.y + f.h * (1 - t);
}

/**
 * Opening tag of an accessible chart: `role="img"`, an `aria-label`, a `<title>` (the tooltip and
 * accessible name) and a `<desc>`. `extra` is appended to the tag (trusted attributes).
 *
 * @example
 * ```ts
 * svgOpen(400, 200, "Loads <raw>", "desc", "bar-chart");
 * // '<svg xmlns="http://www.w3.org/2000/svg" class="chart bar-chart" viewBox="0 0 400 200" ... aria-label="Loads &lt;raw&gt;"><title>Loads &lt;raw&gt;</title><desc>desc</desc>'
 * ```
 */
export function svgOpen(
  width: number,
  height: number,
  title: string,
  description: string,
  className: string,
  extra = "",
): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${escapeXml(className)}" ` +
    `viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
    `aria-label="${escapeXml(title)}"${extra}>` +
    `<title>${escapeXml(title)}</title><desc>${escapeXml(description)}</desc>`
  );
}

/**
 * Y axis with grid lines and tick labels, and an optional rotated axis label.
 *
 * @example
 * ```ts
 * svgYAxis({ x: 60, y: 20, w: 300, h: 100, yMin: 0, yMax: 1 }, "balancedness");
 * // '<g class="axis y"><line class="grid" .../><text ...>0</text>...'
 * ```
 */
export function svgYAxis(f: Frame, label: string | undefined, ticks = 5): string {
  let out = `<g class="axis y">`;
  for (const t of niceTicks(f.yMin, f.yMax, ticks)) {
    const y = px(yOf(f, t));
    out +=
      `<line class="grid" x1="${px(f.x)}" x2="${px(f.x + f.w)}" y1="${y}" y2="${y}"/>` +
      `<text x="${px(f.x - 6)}" y="${y}" dy="0.32em" text-anchor="end">${escapeXml(formatNumber(t))}</text>`;
  }
  out += `<line class="domain" x1="${px(f.x)}" x2="${px(f.x)}" y1="${px(f.y)}" y2="${px(f.y + f.h)}"/>`;
  if (label) {
    const cy = px(f.y + f.h / 2);
    out += `<text class="label" transform="translate(${px(f.x - 44)},${cy}) rotate(-90)" text-anchor="middle">${escapeXml(label)}</text>`;
  }
  return `${out}</g>`;
}

/**
 * X axis line with labels at the given pixel positions and an optional axis label.
 *
 * @example
 * ```ts
 * const frame = { x: 60, y: 20, w: 300, h: 100, yMin: 0, yMax: 1 };
 * svgXAxis(frame, [{ x: 80, text: "0" }], "layer"); // '<g class="axis x">...'
 * ```
 */
export function svgXAxis(
  f: Frame,
  ticks: ReadonlyArray<{ x: number; text: string }>,
  label: string | undefined,
): string {
  const base = px(f.y + f.h);
  let out = `<g class="axis x"><line class="domain" x1="${px(f.x)}" x2="${px(f.x + f.w)}" y1="${base}" y2="${base}"/>`;
  for (const t of ticks) {
    out += `<text x="${px(t.x)}" y="${px(f.y + f.h + 16)}" text-anchor="middle">${escapeXml(t.text)}</text>`;
  }
  if (label) {
    out += `<text class="label" x="${px(f.x + f.w / 2)}" y="${px(f.y + f.h + 36)}" text-anchor="middle">${escapeXml(label)}</text>`;
  }
  return `${out}</g>`;
}

/**
 * Horizontal reference lines; their labels go in the chart's legend (inline labels collide with
 * the data and with each other when two lines are close), and in a tooltip.
 *
 * @example
 * ```ts
 * const frame = { x: 60, y: 20, w: 300, h: 100, yMin: 0, yMax: 1 };
 * svgRefLines(frame, [{ value: 1, label: "ideal", color: "#555", dash: "4 3" }]);
 * // '<g class="ref"><line ... stroke="#555" .../><title>ideal</title></g>'
 * ```
 */
export function svgRefLines(f: Frame, lines: ReadonlyArray<RefLine>): string {
  let out = "";
  for (const r of lines) {
    if (!Number.isFinite(r.value)) continue;
    const y = px(yOf(f, r.value));
    const dash = r.dash ? ` stroke-dasharray="${escapeXml(r.dash)}"` : "";
    out += `<g class="ref"><line x1="${px(f.x)}" x2="${px(f.x + f.w)}" y1="${y}" y2="${y}" stroke="${escapeXml(r.color)}" stroke-width="1.5"${dash}/><title>${escapeXml(r.label)}</title></g>`;
  }
  return out;
}

/** An entry of a chart legend: a coloured swatch (or line) and a name. */
export interface LegendItem {
  name: string;
  color: string;
  /** Draw a line (optionally dashed) instead of a filled square. */
  line?: boolean;
  dash?: string;
}

/** Estimated width of a legend entry at the report's 12 px font. */
function legendItemWidth(it: LegendItem): number {
  return 24 + 6.6 * it.name.length + 20;
}

/**
 * Rows a legend needs when wrapped at `maxWidth` pixels (to reserve room above a chart).
 *
 * @example
 * ```ts
 * legendRows([{ name: "before", color: "#e08214" }], 1000); // 1
 * ```
 */
export function legendRows(items: ReadonlyArray<LegendItem>, maxWidth: number): number {
  let rows = 1;
  let w = 0;
  for (const it of items) {
    const iw = legendItemWidth(it);
    if (w > 0 && w + iw > maxWidth) {
      rows++;
      w = 0;
    }
    w += iw;
  }
  return rows;
}

/**
 * A legend inside an SVG starting at `(x, y)` (the first row's centre line), wrapped into rows
 * 20 px apart when wider than `maxWidth`.
 *
 * @example
 * ```ts
 * svgLegend([{ name: "before", color: "#e08214" }], 60, 20);
 * // '<g class="legend"><rect x="63" y="14" width="12" height="12" rx="2" fill="#e08214"/><text ...>before</text></g>'
 * ```
 */
export function svgLegend(
  items: ReadonlyArray<LegendItem>,
  x: number,
  y: number,
  maxWidth = Number.POSITIVE_INFINITY,
): string {
  let out = `<g class="legend">`;
  let cx = x;
  let cy = y;
  for (const it of items) {
    const iw = legendItemWidth(it);
    if (cx > x && cx - x + iw > maxWidth) {
      cx = x;
      cy += 20;
    }
    const color = escapeXml(it.color);
    if (it.line) {
      const dash = it.dash ? ` stroke-dasharray="${escapeXml(it.dash)}"` : "";
      out += `<line x1="${px(cx)}" x2="${px(cx + 18)}" y1="${px(cy)}" y2="${px(cy)}" stroke="${color}" stroke-width="2.5"${dash}/>`;
    } else {
      out += `<rect x="${px(cx + 3)}" y="${px(cy - 6)}" width="12" height="12" rx="2" fill="${color}"/>`;
    }
    out += `<text x="${px(cx + 24)}" y="${px(cy)}" dy="0.32em">${escapeXml(it.name)}</text>`;
    cx += iw;
  }
  return `${out}</g>`;
}

/** One line of a {@link svgLineChart}. */
export interface LineSeries {
  name: string;
  values: ArrayLike<number>;
  color: string;
  dash?: string;
}

/** Options of {@link svgLineChart}. */
export interface LineChartOptions {
  title: string;
  /** Longer text for screen readers (what is plotted and what it shows). */
  description?: string;
  series: ReadonlyArray<LineSeries>;
  xLabel?: string;
  yLabel?: string;
  /** The x value of index 0 (default 0); x advances by 1 per index. */
  xStart?: number;
  yMin?: number;
  yMax?: number;
  refLines?: ReadonlyArray<RefLine>;
  width?: number;
  height?: number;
  /** Draw a dot at each point when there are at most this many points (default 80). */
  markersUpTo?: number;
  /**
   * Series longer than this are averaged over equal buckets before drawing (default twice the
   * plot width in pixels), and the chart says so.
   */
  maxPoints?: number;
  className?: string;
}

/**
 * A line chart of one or more series over a common integer x axis (layers, steps...), with a
 * legend, grid, reference lines and optional downsampling of long series.
 *
 * @example
 * ```ts
 * svgLineChart({ title: "Balancedness", series: [{ name: "after", values: [0.9, 0.95], color: "#2166ac" }] });
 * // '<svg xmlns="http://www.w3.org/2000/svg" class="chart line-chart" ... role="img" aria-label="Balancedness" ...>...'
 * ```
 */
export function svgLineChart(o: LineChartOptions): string {
  const width = o.width ?? 1120;
  const height = o.height ?? 320;
  const f: Frame = { x: 64, y: 40, w: width - 64 - 20, h: height - 40 - 52, yMin: 0, yMax: 1 };
  const n = o.series.reduce((m, s) => Math.max(m, s.values.length), 0);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const s of o.series) {
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  for (const r of o.refLines ?? []) {
    if (Number.isFinite(r.value)) {
      lo = Math.min(lo, r.value);
      hi = Math.max(hi, r.value);
    }
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  f.yMin = o.yMin ?? Math.min(0, lo);
  f.yMax = o.yMax ?? (hi > f.yMin ? hi + (hi - f.yMin) * 0.05 : f.yMin + 1);
  const maxPoints = Math.max(2, o.maxPoints ?? Math.floor(f.w * 2));
  const bucket = n > maxPoints ? Math.ceil(n / maxPoints) : 1;
  const xStart = o.xStart ?? 0;
  const xOf = (i: number) => f.x + (n <= 1 ? f.w / 2 : (f.w * i) / (n - 1));
  const note = bucket > 1 ? ` Each point is the mean of ${bucket} consecutive values.` : "";
  let out = svgOpen(
    width,
    height,
    o.title,
    `${o.description ?? o.title}${note}`,
    o.className ?? "line-chart",
    ` data-points="${n}" data-bucket="${bucket}"`,
  );
  out += svgYAxis(f, o.yLabel);
  const xt = niceTicks(xStart, xStart + Math.max(0, n - 1), Math.min(10, Math.max(1, n - 1)))
    .filter((t) => Number.isInteger(t) && t >= xStart && t <= xStart + n - 1)
    .map((t) => ({ x: xOf(t - xStart), text: formatNumber(t) }));
  out += svgXAxis(f, xt, o.xLabel);
  out += svgRefLines(f, o.refLines ?? []);
  const markers = n <= (o.markersUpTo ?? 80) && bucket === 1;
  for (const s of o.series) {
    const color = escapeXml(s.color);
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : "";
    let d = "";
    let dots = "";
    let pen = false;
    for (let i = 0; i < s.values.length; i += bucket) {
      let sum = 0;
      let cnt = 0;
      for (let j = i; j < Math.min(s.values.length, i + bucket); j++) {
        if (Number.isFinite(s.values[j])) {
          sum += s.values[j];
          cnt++;
        }
      }
      if (cnt === 0) {
        pen = false;
        continue;
      }
      const x = px(xOf(bucket > 1 ? i + (Math.min(bucket, s.values.length - i) - 1) / 2 : i));
      const y = px(yOf(f, sum / cnt));
      d += `${pen ? "L" : "M"}${x} ${y}`;
      pen = true;
      if (markers) dots += `<circle cx="${x}" cy="${y}" r="2.6"/>`;
    }
    out +=
      `<g class="series" data-series="${escapeXml(s.name)}"><title>${escapeXml(s.name)}</title>` +
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"${dash}/>` +
      (dots ? `<g fill="${color}">${dots}</g>` : "") +
      `</g>`;
  }
  out += svgLegend(
    [
      ...o.series.map((s) => ({ name: s.name, color: s.color, line: true, dash: s.dash })),
      ...(o.refLines ?? []).map((r) => ({
        name: r.label,
        color: r.color,
        line: true,
        dash: r.dash,
      })),
    ],
    f.x,
    18,
  );
  if (note) {
    out += `<text class="note" x="${px(f.x + f.w)}" y="18" dy="0.32em" text-anchor="end">${escapeXml(note.trim())}</text>`;
  }
  return `${out}</svg>`;
}

/** One series of bars of a {@link svgBarChart} (several series are drawn side by side). */
export interface BarSeries {
  name: string;
  values: ArrayLike<number>;
  color: string;
}

/** Options of {@link svgBarChart}. */
export interface BarChartOptions {
  title: string;
  description?: string;
  /** One label per bar position; long lists are thinned to readable tick labels. */
  categories: ReadonlyArray<string>;
  series: ReadonlyArray<BarSeries>;
  xLabel?: string;
  yLabel?: string;
  yMin?: number;
  yMax?: number;
  refLines?: ReadonlyArray<RefLine>;
  width?: number;
  height?: number;
  /** Text of each bar's tooltip; default `"<category> <series>: <value>"`. */
  tooltip?: (series: number, index: number, value: number) => string;
  className?: string;
}

/**
 * Bars inside a frame (one group per category, series side by side), each with a tooltip, an
 * optional highlighted bar, optional separators every `separators` categories (nodes), and
 * category labels thinned so that they never overlap.
 *
 * @example
 * ```ts
 * const frame = { x: 60, y: 20, w: 300, h: 100, yMin: 0, yMax: 1 };
 * barPanel(frame, ["0", "1"], [{ name: "load", values: [3, 5], color: "#2166ac" }], (s, i, v) => `GPU ${i}: ${v}`);
 * // '<g class="bars" data-series="load" fill="#2166ac"><rect ...><title>GPU 0: 3</title></rect>...'
 * ```
 */
export function barPanel(
  f: Frame,
  categories: ReadonlyArray<string>,
  series: ReadonlyArray<BarSeries>,
  tooltip: (series: number, index: number, value: number) => string,
  highlight?: { index: number; color: string },
  separators?: number,
): string {
  const n = categories.length;
  const groupW = n > 0 ? f.w / n : f.w;
  const gap = groupW >= 6 ? Math.min(groupW * 0.2, 8) : 0;
  const barW = (groupW - gap) / Math.max(1, series.length);
  let out = "";
  // Separators closer than 12 px would paint the panel grey; leave them out then.
  if (separators && separators < n && separators * groupW >= 12) {
    for (let i = separators; i < n; i += separators) {
      const x = px(f.x + i * groupW);
      out += `<line class="sep" x1="${x}" x2="${x}" y1="${px(f.y)}" y2="${px(f.y + f.h)}"/>`;
    }
  }
  const base = yOf(f, Math.max(f.yMin, 0));
  for (let s = 0; s < series.length; s++) {
    const ser = series[s];
    out += `<g class="bars" data-series="${escapeXml(ser.name)}" fill="${escapeXml(ser.color)}">`;
    for (let i = 0; i < n; i++) {
      const v = i < ser.values.length ? ser.values[i] : Number.NaN;
      if (!Number.isFinite(v)) continue;
      const y = yOf(f, v);
      const top = Math.min(y, base);
      const h = Math.max(Math.abs(base - y), v !== 0 ? 0.5 : 0);
      const fill =
        highlight && highlight.index === i ? ` fill="${escapeXml(highlight.color)}"` : "";
      out +=
        `<rect x="${px(f.x + i * groupW + gap / 2 + s * barW)}" y="${px(top)}" width="${px(Math.max(barW, 0.5))}" height="${px(h)}"${fill}>` +
        `<title>${escapeXml(tooltip(s, i, v))}</title></rect>`;
    }
    out += `</g>`;
  }
  const longest = categories.reduce((m, c) => Math.max(m, c.length), 1);
  const every = Math.max(1, Math.ceil((n * (longest * 6.4 + 12)) / Math.max(1, f.w)));
  const ticks: { x: number; text: string }[] = [];
  for (let i = 0; i < n; i += every)
    ticks.push({ x: f.x + (i + 0.5) * groupW, text: categories[i] });
  return `${out}${svgXAxis(f, ticks, undefined)}`;
}

/**
 * A bar chart: one bar per category and series (series side by side), with a legend, grid and
 * reference lines (e.g. mean and lower bound). Each bar has a tooltip.
 *
 * @example
 * ```ts
 * svgBarChart({ title: "GPU load", categories: ["0", "1"], series: [{ name: "load", values: [3, 5], color: "#2166ac" }] });
 * // '<svg ... class="chart bar-chart" ... aria-label="GPU load" ...>...<rect ...><title>0 load: 3</title></rect>...'
 * ```
 */
export function svgBarChart(o: BarChartOptions): string {
  const width = o.width ?? 1120;
  const height = o.height ?? 300;
  const f: Frame = { x: 64, y: 40, w: width - 64 - 20, h: height - 40 - 52, yMin: 0, yMax: 1 };
  let hi = 0;
  let lo = 0;
  for (const s of o.series) {
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i];
      if (Number.isFinite(v)) {
        hi = Math.max(hi, v);
        lo = Math.min(lo, v);
      }
    }
  }
  for (const r of o.refLines ?? []) if (Number.isFinite(r.value)) hi = Math.max(hi, r.value);
  f.yMin = o.yMin ?? lo;
  f.yMax = o.yMax ?? (hi > f.yMin ? hi * 1.05 : f.yMin + 1);
  const tooltip =
    o.tooltip ??
    ((s: number, i: number, v: number) =>
      `${o.categories[i]} ${o.series[s].name}: ${formatNumber(v)}`);
  let out = svgOpen(
    width,
    height,
    o.title,
    o.description ?? o.title,
    o.className ?? "bar-chart",
    ` data-bars="${o.series.length * o.categories.length}"`,
  );
  out += svgYAxis(f, o.yLabel);
  out += barPanel(f, o.categories, o.series, tooltip);
  if (o.xLabel) {
    out += `<text class="label" x="${px(f.x + f.w / 2)}" y="${px(f.y + f.h + 36)}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`;
  }
  out += svgRefLines(f, o.refLines ?? []);
  out += svgLegend(
    [
      ...o.series.map((s) => ({ name: s.name, color: s.color })),
      ...(o.refLines ?? []).map((r) => ({
        name: r.label,
        color: r.color,
        line: true,
        dash: r.dash,
      })),
    ],
    f.x,
    18,
  );
  return `${out}</svg>`;
}

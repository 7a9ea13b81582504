/**
 * Colours of the report: a categorical colour per expert (hue by expert group, so a hierarchical
 * plan's node-local groups are visible), a readable text colour on any fill, and the sequential
 * heat scale of the load heatmap.
 */

/** Before EPLB (contiguous experts, one slot each): orange; colour-blind safe against blue. */
export const BEFORE_COLOR = "#e08214";
/** After EPLB: blue. */
export const AFTER_COLOR = "#2166ac";
/** Mean GPU load reference line. */
export const MEAN_COLOR = "#4d4d4d";
/** Lower bound reference line. */
export const BOUND_COLOR = "#1a9850";
/** The busiest GPU (the one that sets a layer's balancedness). */
export const HOT_COLOR = "#b2182b";
/** A slot whose expert changed since the previous placement (a weight transfer): near black. */
export const MOVED_COLOR = "#111111";

/**
 * `#rrggbb` of an HSL colour (h in degrees, s and l in percent).
 *
 * @example
 * ```ts
 * hslToHex(0, 100, 50); // "#ff0000"
 * ```
 */
export function hslToHex(h: number, s: number, l: number): string {
  const [r, g, b] = hslToRgb(h, s, l);
  return `#${hex2(r)}${hex2(g)}${hex2(b)}`;
}

function hex2(v: number): string {
  return Math.round(Math.min(255, Math.max(0, v)))
    .toString(16)
    .padStart(2, "0");
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const S = s / 100;
  const L = l / 100;
  const k = (n: number) => (n + h / 30) % 12;
  const a = S * Math.min(L, 1 - L);
  const f = (n: number) => L - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [255 * f(0), 255 * f(8), 255 * f(4)];
}

/**
 * A distinct fill for expert `expert`. With groups (`numGroups > 1`) the hue says the group and
 * the lightness varies inside it, so one glance at the placement grid shows which groups a node
 * holds; without groups hues follow the golden angle so neighbouring ids differ.
 *
 * @example
 * ```ts
 * expertColor(0, 256, 8);  // "#..." (group 0's hue)
 * expertColor(32, 256, 8); // a different hue: expert 32 is in group 1
 * ```
 */
export function expertColor(expert: number, numExperts: number, numGroups = 1): string {
  if (numGroups > 1 && numExperts % numGroups === 0) {
    const perGroup = numExperts / numGroups;
    const group = Math.floor(expert / perGroup);
    const i = expert % perGroup;
    // Scatter lightness inside the group (stride coprime-ish to the group size) so that
    // neighbouring ids, often placed together, still look different.
    const t = perGroup > 1 ? ((i * 7) % perGroup) / (perGroup - 1) : 0.5;
    return hslToHex((group * 360) / numGroups + 12, 62 - 12 * t, 40 + 38 * t);
  }
  const hue = (expert * 137.508) % 360;
  const light = [48, 64, 76][expert % 3];
  return hslToHex(hue, 62, light);
}

/**
 * The hue-only colour of a group, for legends.
 *
 * @example
 * ```ts
 * groupColor(1, 8); // "#...": the middle shade of group 1
 * ```
 */
export function groupColor(group: number, numGroups: number): string {
  return hslToHex((group * 360) / numGroups + 12, 56, 55);
}

/**
 * Black or white, whichever reads better on `#rrggbb` (WCAG relative luminance).
 *
 * @example
 * ```ts
 * textColorOn("#ffff00"); // "#111"
 * textColorOn("#202060"); // "#fff"
 * ```
 */
export function textColorOn(fill: string): string {
  const n = Number.parseInt(fill.slice(1), 16);
  const lin = (c: number) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const lum = 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
  // Contrast with black (lum + 0.05) / 0.05 vs with white 1.05 / (lum + 0.05).
  return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? "#111" : "#fff";
}

/** Upper edges of the heat bins, in multiples of the layer's mean expert load. */
export const HEAT_EDGES: readonly number[] = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5];

/** Fills of the heat bins (one more than {@link HEAT_EDGES}), light to dark (YlOrRd). */
export const HEAT_COLORS: readonly string[] = [
  "#ffffcc",
  "#ffeda0",
  "#fed976",
  "#feb24c",
  "#fd8d3c",
  "#fc4e2a",
  "#e31a1c",
  "#bd0026",
  "#800026",
];

/**
 * The heat bin of a load expressed relative to its layer mean.
 *
 * @example
 * ```ts
 * heatBin(0.1); // 0
 * heatBin(1.2); // 4  (between 1x and 1.5x the mean)
 * heatBin(9);   // 8
 * ```
 */
export function heatBin(relative: number): number {
  for (let i = 0; i < HEAT_EDGES.length; i++) if (relative < HEAT_EDGES[i]) return i;
  return HEAT_EDGES.length;
}

import { AFTER_COLOR, BEFORE_COLOR } from "./colors.js";
import { formatNumber, svgLineChart } from "./svg.js";

/** Options of {@link svgLayerBalance}. */
export interface LayerBalanceOptions {
  title?: string;
  width?: number;
  height?: number;
}

/**
 * Balancedness (mean GPU load / max GPU load) of every layer before EPLB (experts in order, one
 * slot each) and after, as two lines over the layers, with each one's mean as a dashed line.
 *
 * @example
 * ```ts
 * svgLayerBalance([0.4, 0.5], [0.93, 0.95]);
 * // '<svg ... class="chart layer-balance" ... aria-label="Balancedness per layer" ...>...'
 * ```
 */
export function svgLayerBalance(
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  options: LayerBalanceOptions = {},
): string {
  const mean = (v: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i];
    return v.length > 0 ? s / v.length : Number.NaN;
  };
  const mb = mean(before);
  const ma = mean(after);
  return svgLineChart({
    title: options.title ?? "Balancedness per layer",
    description:
      `Balancedness (mean GPU load divided by max GPU load, 1 is perfect) of each of ` +
      `${Math.max(before.length, after.length)} layers, before EPLB (mean ${formatNumber(mb)}) ` +
      `and after (mean ${formatNumber(ma)}).`,
    series: [
      { name: "before EPLB", values: before, color: BEFORE_COLOR },
      { name: "after EPLB", values: after, color: AFTER_COLOR },
    ],
    refLines: [
      { value: mb, label: `mean before ${formatNumber(mb)}`, color: BEFORE_COLOR, dash: "5 4" },
      { value: ma, label: `mean after ${formatNumber(ma)}`, color: AFTER_COLOR, dash: "5 4" },
    ],
    xLabel: "layer",
    yLabel: "mean / max GPU load",
    yMin: 0,
    yMax: 1,
    width: options.width,
    height: options.height,
    className: "layer-balance",
  });
}

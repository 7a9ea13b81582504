/**
 * eplb/report: the self-contained HTML report and its SVG charts (no dependencies, no scripts in
 * the page). `buildReportModel` computes what the report shows; `htmlReport` renders it.
 *
 * @example
 * ```ts
 * import { rebalanceExperts, toLoadMatrix } from "eplb";
 * import { buildReportModel, htmlReport } from "eplb/report";
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const { placement } = rebalanceExperts(loads, 6, 1, 1, 2);
 * const model = buildReportModel({ loads, placement, numGpus: 2, numNodes: 1, numGroups: 1 });
 * htmlReport(model).startsWith("<!doctype html>"); // true
 * ```
 */

export {
  AFTER_COLOR,
  BEFORE_COLOR,
  expertColor,
  HEAT_COLORS,
  HEAT_EDGES,
  heatBin,
  textColorOn,
} from "./colors.js";
export { type GpuBarsOptions, svgGpuBars } from "./gpu-bars.js";
export { type HeatmapOptions, svgHeatmap } from "./heatmap.js";
export {
  defaultSections,
  figure,
  type HtmlReportOptions,
  htmlReport,
  type ReportSection,
} from "./html.js";
export { type LayerBalanceOptions, svgLayerBalance } from "./layer-balance.js";
export { migrationSection, migrationSections } from "./migration.js";
export {
  type BeforeMetrics,
  buildReportModel,
  type DetailLayer,
  type MigrationView,
  migrationView,
  pickDetailLayers,
  type ReportInput,
  type ReportModel,
} from "./model.js";
export { type PlacementGridOptions, svgPlacementGrid } from "./placement-grid.js";
export { svgTransferRounds, type TransferRoundsOptions } from "./schedule-chart.js";
export {
  cumulativeSeconds,
  type SweepPoint,
  simulationSection,
  sweepSection,
} from "./simulation.js";
export {
  type BarChartOptions,
  type BarSeries,
  escapeXml,
  formatNumber,
  type LegendItem,
  type LineChartOptions,
  type LineSeries,
  niceTicks,
  type RefLine,
  svgBarChart,
  svgLegend,
  svgLineChart,
} from "./svg.js";

import { describe, it } from "node:test";
import * as entry from "../../src/report/index.js";
import { assertEntry } from "../helpers/entry.js";

/** Every run-time name of eplb/report (types are counted by test/entries.test.ts). */
const NAMES = [
  "AFTER_COLOR",
  "BEFORE_COLOR",
  "HEAT_COLORS",
  "HEAT_EDGES",
  "buildReportModel",
  "cumulativeSeconds",
  "defaultSections",
  "escapeXml",
  "expertColor",
  "figure",
  "formatNumber",
  "heatBin",
  "htmlReport",
  "migrationSection",
  "migrationSections",
  "migrationView",
  "niceTicks",
  "pickDetailLayers",
  "simulationSection",
  "svgBarChart",
  "svgGpuBars",
  "svgHeatmap",
  "svgLayerBalance",
  "svgLegend",
  "svgLineChart",
  "svgPlacementGrid",
  "svgTransferRounds",
  "sweepSection",
  "textColorOn",
];

describe("eplb/report", () => {
  it("exposes exactly its 29 names, and package.json maps eplb/report to this file", async () => {
    await assertEntry(entry, "eplb/report", NAMES);
  });
});

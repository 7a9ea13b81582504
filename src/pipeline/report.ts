// The write stage of `eplb report`: the page of a placement under loads, with the migration
// sections when it was planned from (or compared with) a previous placement.
import { htmlReport } from "../report/html.js";
import { localitySection } from "../report/locality.js";
import { migrationSections } from "../report/migration.js";
import { buildReportModel, type ReportInput, type ReportModel } from "../report/model.js";

/**
 * Evaluates a placement for the report and renders the page: the standard sections, and the
 * migration sections when `input.previous` is given.
 *
 * @param input the loads, the placement and its cluster shape, what the page names as sources
 * @returns the page and the figures it shows (for a summary line)
 * @throws EplbInputError when the placement does not fit the loads or the cluster shape, or a
 *   detail layer does not exist
 * @example
 * ```ts
 * const loads = toLoadMatrix([[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86]]);
 * const placement = planDeepseek(loads, makeTopology(12, 16, 4, 2, 8));
 * const { html, model } = placementReport({ loads, placement, numGpus: 8, numNodes: 2, numGroups: 4 });
 * html.startsWith("<!doctype html>"); // true
 * model.after.balancedness; // 0.827...
 * ```
 */
export function placementReport(input: ReportInput): { html: string; model: ReportModel } {
  const model = buildReportModel(input);
  const html = htmlReport(model, {
    ...(model.migration ? { sections: migrationSections() } : {}),
    ...(model.locality ? { extraSections: [localitySection()] } : {}),
  });
  return { html, model };
}

import type { LocalityMetrics } from "../core/routing/summary.js";
import type { HierarchyMetrics } from "../pipeline/locality.js";
import { fixed3 } from "./output.js";

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;

/**
 * The summary lines of `metrics.locality`: remote nodes per token of the placement (and of the
 * previous one), the worst layer, the cross-node share and the busiest node-to-node link.
 *
 * @param m the locality metrics
 * @param what the placement's name in the line (`plan`, `placement`)
 * @returns the lines, indented as the summaries' other lines
 * @example
 * ```ts
 * const placement = { remoteNodesPerToken: 0.5, perLayer: [0.5], crossNodeShare: 0.25,
 *   traffic: [[0, 1], [0, 0]] };
 * localityLines({ routing: { tokens: 2, layers: 1, k: 2, sources: "ranks" }, placement }, "plan")[1];
 * // "  choices served off the token's node: 25.0%; busiest link node 0 -> 1: 1 token copies"
 * ```
 */
export function localityLines(m: LocalityMetrics, what: string): string[] {
  const p = m.placement;
  const r = m.routing;
  const worst = p.perLayer.reduce((a, b) => Math.max(a, b), 0);
  let link = { src: 0, dst: 0, copies: 0 };
  for (let src = 0; src < p.traffic.length; src++) {
    const row = p.traffic[src];
    for (let dst = 0; dst < row.length; dst++) {
      if (row[dst] > link.copies) link = { src, dst, copies: row[dst] };
    }
  }
  const sources = r.sources === "ranks" ? "sources from ranks" : "sources spread over nodes";
  return [
    `  remote nodes per token (routing: ${r.tokens} tokens x ${r.layers} layers, top-${r.k}, ${sources})  ${what} ${fixed3(p.remoteNodesPerToken)} (worst layer ${fixed3(worst)})${m.previous ? `  previous ${fixed3(m.previous.remoteNodesPerToken)}` : ""}`,
    `  choices served off the token's node: ${pct(p.crossNodeShare, 1)}${m.previous ? ` (previous ${pct(m.previous.crossNodeShare, 1)})` : ""}; busiest link node ${link.src} -> ${link.dst}: ${Number(link.copies.toPrecision(6))} token copies`,
  ];
}

/**
 * The summary lines of `metrics.hierarchy`: the flat bound's gap split into the strict
 * hierarchy's own cost and the plan's loss within it, and what `--relaxed` would plan.
 *
 * @param h the hierarchy metrics
 * @param what the placement's name in the line
 * @returns the lines
 * @example
 * ```ts
 * const h = { bound: [7], hierarchyCost: 1.05, worstHierarchyCost: 1.1, lossWithin: 1.001,
 *   worstLossWithin: 1.002, exact: true };
 * hierarchyLines(h, "plan")[0];
 * // "  strict hierarchy (groups kept on nodes): its own cost 1.050x the flat lower bound (worst layer 1.100); this plan is 0.10% above the hierarchy's bound (worst layer 0.20%)"
 * ```
 */
export function hierarchyLines(h: HierarchyMetrics, what: string): string[] {
  const lines = [
    `  strict hierarchy (groups kept on nodes): its own cost ${fixed3(h.hierarchyCost)}x the flat lower bound (worst layer ${fixed3(h.worstHierarchyCost)}); this ${what} is ${pct(h.lossWithin - 1)} above the hierarchy's bound (worst layer ${pct(h.worstLossWithin - 1)})${h.exact ? "" : " (bound from a swap search: at most this)"}`,
  ];
  const x = h.relaxed;
  if (x) {
    lines.push(
      `  --relaxed would plan: max GPU load / lower bound ${fixed3(x.maxOverLowerBound)}, balancedness ${fixed3(x.balancedness)}, ${pct(x.offNodeShare, 1)} of load off its group's node${x.remoteNodesPerToken === undefined ? "" : `, ${fixed3(x.remoteNodesPerToken)} remote nodes per token`}`,
    );
  }
  return lines;
}

// The priced columns and notes of `eplb simulate`'s table (with cost flags), kept apart from the
// unpriced table so each stays short.
import type { CostModel } from "../core/cost/model.js";
import type { SimulationResult, StrategyResult } from "../core/traces/simulate.js";

/** Headers of the priced columns. */
export const COST_COLUMNS = [
  "moe ms/step",
  "transfer ms/rebalance",
  "total ms",
  "vs none",
  "vs deepseek",
];

/**
 * Milliseconds as a table prints them: 3 decimals below 10, 1 below 1,000, then whole with
 * thousands separators.
 *
 * @example
 * ```ts
 * formatMs(0.25); // "0.250"
 * formatMs(123.456); // "123.5"
 * formatMs(8640186.5); // "8,640,187"
 * ```
 */
export function formatMs(x: number): string {
  if (x >= 1000) return Math.round(x).toLocaleString("en-US");
  return x >= 10 ? x.toFixed(1) : x.toFixed(3);
}

/**
 * A speed-up as `1.23x` (`a / b` where `b` is the strategy's time), `-` when undefined.
 *
 * @example
 * ```ts
 * speedup(300, 100); // "3.00x"
 * speedup(1, 250); // "0.004x"
 * ```
 */
export function speedup(reference: number | undefined, time: number): string {
  if (reference === undefined || !(time > 0)) return "-";
  const x = reference / time;
  return x >= 0.1 ? `${x.toFixed(2)}x` : `${x.toPrecision(1)}x`;
}

/**
 * The priced cells of a strategy's row: MoE ms per step, stall per rebalance, total, and the
 * speed-up against no balancing and against deepseek re-planning.
 *
 * @example
 * ```ts
 * const trace = { steps: 6, layers: 1, experts: 2, data: new Float64Array([3, 1, 3, 1, 1, 3, 1, 3, 1, 3, 1, 3]) };
 * const cost = makeCostModel({ expertBytes: 1e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
 * const r = simulate(trace, { numReplicas: 4, numGroups: 1, numNodes: 1, numGpus: 2, interval: 2,
 *   window: 2, estimator: "mean", policy: "deepseek", cost, costGate: false });
 * costCells(r.eplb, r); // ["2.667", "1.000", "11.7", "1.03x", "1.00x"]
 * ```
 */
export function costCells(s: StrategyResult, r: SimulationResult): string[] {
  const c = s.cost;
  if (!c) return ["", "", "", "", ""];
  return [
    formatMs(c.moeMsPerStep),
    formatMs(c.transferMsPerRebalance),
    formatMs(c.totalMs),
    speedup(r.baselines.none?.cost?.totalMs, c.totalMs),
    speedup(r.baselines.deepseek?.cost?.totalMs, c.totalMs),
  ];
}

/**
 * The model a replay was priced with, in one line.
 *
 * @example
 * ```ts
 * describeCostModel(makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 }));
 * // "44,000,000 bytes per expert, links 1600 / 400 Gb/s per GPU within / between nodes, 0.05 us per (token, expert), 0 us per active expert"
 * ```
 */
export function describeCostModel(m: CostModel): string {
  return `${m.expertBytes.toLocaleString("en-US")} bytes per expert, links ${m.intraGbps} / ${m.interGbps} Gb/s per GPU within / between nodes, ${Number(m.tokenUs.toPrecision(4))} us per (token, expert), ${Number(m.expertLoadUs.toPrecision(4))} us per active expert`;
}

/**
 * The notes under a priced table: what the columns mean, the model, the gate's count and the
 * verdict against no balancing and deepseek re-planning.
 *
 * @example
 * ```ts
 * const trace = { steps: 6, layers: 1, experts: 2, data: new Float64Array([3, 1, 3, 1, 1, 3, 1, 3, 1, 3, 1, 3]) };
 * const cost = makeCostModel({ expertBytes: 1e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
 * const r = simulate(trace, { numReplicas: 4, numGroups: 1, numNodes: 1, numGpus: 2, interval: 2,
 *   window: 2, estimator: "mean", policy: "deepseek", cost, costGate: false });
 * costNotes(r).at(-1); // "eplb: 1.03x faster than no balancing; 1.00x faster than deepseek re-planning."
 * ```
 */
export function costNotes(r: SimulationResult): string[] {
  const c = r.eplb.cost;
  if (!c || !r.cost) return [];
  const later = r.rebalanceSteps.length - 1;
  const lines = [
    "moe ms/step = per layer the busiest GPU's time (token-us x its load + expert-load-us x its distinct active experts), summed over layers, mean over judged steps;",
    "transfer ms/rebalance = the stall of a rebalance's transfers in rounds (each as long as its slowest copy), mean over the rebalances after the first;",
    `total = judged steps x moe + (rebalances - 1) x transfer: rebalances stall serving. Priced with ${describeCostModel(r.cost.model)}.`,
  ];
  lines.push(
    r.cost.gate
      ? `gate: eplb skipped ${c.skippedRebalances} of ${later} rebalances after the first, and kept ${c.skippedLayers} changed layers, whose expected saving over ${r.cost.gateIntervals} interval${r.cost.gateIntervals === 1 ? "" : "s"} was below their transfer time.`
      : "gate: off (every rebalance eplb plans is carried out).",
  );
  const none = r.baselines.none?.cost?.totalMs;
  const ds = r.baselines.deepseek?.cost?.totalMs;
  if (none !== undefined && ds !== undefined) {
    const verdict =
      c.totalMs < none
        ? `eplb: ${speedup(none, c.totalMs)} faster than no balancing`
        : `eplb LOSES to no balancing (${speedup(none, c.totalMs)}): its rebalances stall longer than the balance saves`;
    const against =
      c.totalMs <= ds
        ? `${speedup(ds, c.totalMs)} faster than deepseek re-planning`
        : `slower than deepseek re-planning (${speedup(ds, c.totalMs)})`;
    lines.push(`${verdict}; ${against}.`);
    if (ds > none) {
      lines.push(
        "deepseek re-planning LOSES to no balancing here: at this interval and these prices, rebalancing as engines run it does not pay.",
      );
    }
  }
  return lines;
}

/**
 * Each strategy's stall at every rebalance (the first is 0), for the JSON's `series.transferMs`.
 *
 * @example
 * ```ts
 * const trace = { steps: 6, layers: 1, experts: 2, data: new Float64Array([3, 1, 3, 1, 1, 3, 1, 3, 1, 3, 1, 3]) };
 * const cost = makeCostModel({ expertBytes: 1e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
 * const r = simulate(trace, { numReplicas: 4, numGroups: 1, numNodes: 1, numGpus: 2, interval: 2,
 *   window: 2, estimator: "mean", policy: "deepseek", cost, costGate: false });
 * costSeries({ eplb: r.eplb, none: r.baselines.none }); // { eplb: [0, 1] }
 * ```
 */
export function costSeries(
  strategies: Record<string, StrategyResult | undefined>,
): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, s] of Object.entries(strategies)) {
    if (s?.cost && name !== "none")
      out[name] = Array.from(s.cost.transferMs, (x) => Number(x.toPrecision(6)));
  }
  return out;
}

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lognormalLoads } from "../../src/core/blocks/random.js";
import { hierarchyPrice } from "../../src/core/evaluation/hierarchy.js";
import { evaluatePlacement } from "../../src/core/evaluation/metrics.js";
import { makeTopology } from "../../src/core/model/topology.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { dispatchStats } from "../../src/core/routing/dispatch.js";
import { round6 } from "../../src/core/routing/summary.js";
import { synthesizeRouting } from "../../src/core/traces/synth-routing.js";
import { hierarchyMetrics } from "../../src/pipeline/locality.js";
import { loadsOf } from "../helpers/routing-loads.js";

// 32 experts in 4 groups on 2 nodes of 4 GPUs, 48 slots: a strict hierarchy (4 % 2 == 0).
const E = 32;
const topology = makeTopology(E, 48, 4, 2, 8);
const routing = synthesizeRouting({ tokens: 600, layers: 3, experts: E, k: 4, seed: 21 });
const loads = loadsOf(routing);

/** The deepseek plan's figures, as eplb eval hands them to hierarchyMetrics. */
function planFigures() {
  const { placement } = rebalanceExperts(loads, 48, 4, 2, 8, { policy: "deepseek" });
  return evaluatePlacement(loads, placement, topology);
}

describe("hierarchyMetrics", () => {
  it("is hierarchyPrice with the bounds rounded to six significant digits, and nothing relaxed by default", () => {
    const m = planFigures();
    const out = hierarchyMetrics(loads, m.maxGpuLoad, m.lowerBound, topology);
    const price = hierarchyPrice(loads, m.maxGpuLoad, m.lowerBound, topology);
    assert.deepEqual(out, { ...price, bound: price.bound.map(round6) });
    assert.equal("relaxed" in out, false);
    for (let l = 0; l < 3; l++) {
      // The hierarchy's bound is never below the flat one, nor above what the plan reached.
      assert.ok(price.bound[l] >= m.lowerBound[l] - 1e-9);
      assert.ok(price.bound[l] <= m.maxGpuLoad[l] + 1e-9);
    }
  });

  it("rounds fractional bounds to six significant digits for the JSON report", () => {
    const fractional = lognormalLoads(2, E, 1, 5);
    const { placement } = rebalanceExperts(fractional, 48, 4, 2, 8, { policy: "deepseek" });
    const m = evaluatePlacement(fractional, placement, topology);
    const price = hierarchyPrice(fractional, m.maxGpuLoad, m.lowerBound, topology);
    assert.ok(
      price.bound.some((b) => round6(b) !== b),
      "the case has bounds to round",
    );
    const out = hierarchyMetrics(fractional, m.maxGpuLoad, m.lowerBound, topology);
    for (let l = 0; l < 2; l++) {
      assert.equal(out.bound[l], round6(price.bound[l]));
      assert.ok(Math.abs(out.bound[l] - price.bound[l]) <= 5e-6 * price.bound[l]);
    }
  });

  it("with a relaxed policy: what the same loads planned with relaxedHierarchy reach", () => {
    const m = planFigures();
    const out = hierarchyMetrics(loads, m.maxGpuLoad, m.lowerBound, topology, "balanced");
    const relaxed = rebalanceExperts(loads, 48, 4, 2, 8, {
      policy: "balanced",
      relaxedHierarchy: true,
    }).placement;
    const want = evaluatePlacement(loads, relaxed, topology);
    assert.deepEqual(out.relaxed, {
      balancedness: want.balancedness,
      maxOverLowerBound: want.maxOverLowerBound,
      offNodeShare: want.offNodeShare,
    });
    // A plan that may leave its group's node balances at least as well as the strict one here.
    assert.ok((out.relaxed?.balancedness ?? 0) >= m.balancedness - 1e-9);
  });

  it("with a routing too: the relaxed plan's remote nodes per token", () => {
    const m = planFigures();
    const out = hierarchyMetrics(loads, m.maxGpuLoad, m.lowerBound, topology, "balanced", routing);
    const relaxed = rebalanceExperts(loads, 48, 4, 2, 8, {
      policy: "balanced",
      relaxedHierarchy: true,
    }).placement;
    const remote = dispatchStats(routing, relaxed, topology).remoteNodesPerToken;
    assert.equal(out.relaxed?.remoteNodesPerToken, remote);
    assert.ok(remote > 0 && remote <= 1, `${remote} remote nodes per token on 2 nodes`);
    const noRouting = hierarchyMetrics(
      loads,
      m.maxGpuLoad,
      m.lowerBound,
      topology,
      "balanced",
      null,
    );
    assert.equal(noRouting.relaxed && "remoteNodesPerToken" in noRouting.relaxed, false);
  });

  it("refuses a topology that is not a strict hierarchy", () => {
    const global = makeTopology(E, 48, 3, 2, 8);
    const flat = lognormalLoads(1, E, 1, 2);
    assert.throws(() => hierarchyMetrics(flat, [1], [1], global), /needs a hierarchical topology/);
  });
});

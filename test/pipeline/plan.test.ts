import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  contiguousGpuLoads,
  evaluatePlacement,
  summarizeBalance,
} from "../../src/core/evaluation/metrics.js";
import { EplbInputError } from "../../src/core/model/errors.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { toLoadMatrix } from "../../src/index.js";
import { planWithMetrics } from "../../src/pipeline/plan.js";

// 2 layers, 8 experts; expert 0 hot in layer 0, expert 7 in layer 1.
const loads = toLoadMatrix([
  [90, 10, 12, 8, 20, 15, 5, 40],
  [3, 30, 25, 11, 9, 14, 22, 70],
]);

describe("planWithMetrics", () => {
  test("the plan is the drop-in's plan for the same arguments and policy", () => {
    const { result } = planWithMetrics(loads, 12, 2, 2, 4, "deepseek");
    const direct = rebalanceExperts(loads, 12, 2, 2, 4, { policy: "deepseek" });
    assert.deepEqual(Array.from(result.placement.phy2log), Array.from(direct.placement.phy2log));
    assert.equal(result.policy, "deepseek");
  });

  test("the metrics: the shape, the plan evaluated, and EP without EPLB on the same GPUs", () => {
    const { result, metrics } = planWithMetrics(loads, 12, 2, 2, 4, "balanced");
    assert.equal(metrics.policy, "balanced");
    assert.equal(metrics.mode, "hierarchical");
    assert.deepEqual(
      [
        metrics.layers,
        metrics.experts,
        metrics.replicas,
        metrics.groups,
        metrics.nodes,
        metrics.gpus,
      ],
      [2, 8, 12, 2, 2, 4],
    );
    assert.deepEqual(
      metrics.after,
      evaluatePlacement(loads, result.placement, { numGpus: 4, numNodes: 2, numGroups: 2 }),
    );
    const without = summarizeBalance(contiguousGpuLoads(loads, 4), 2, 4);
    assert.deepEqual(metrics.before, {
      balancedness: without.balancedness,
      worstBalancedness: without.worstBalancedness,
    });
    // Replicating the hot experts must beat experts in order.
    assert.ok(metrics.after.balancedness > metrics.before.balancedness);
    assert.ok(metrics.timeMs >= 0);
    assert.equal(metrics.migration, undefined);
  });

  test("groups that do not split over the nodes: global mode, as the reference", () => {
    assert.equal(planWithMetrics(loads, 12, 1, 2, 4, "deepseek").metrics.mode, "global");
  });

  test("the policy argument wins over options.policy", () => {
    const { metrics } = planWithMetrics(loads, 12, 1, 1, 4, "deepseek", { policy: "balanced" });
    assert.equal(metrics.policy, "deepseek");
  });

  test("from a previous placement: the migration figures come along", () => {
    const first = planWithMetrics(loads, 12, 1, 1, 4, "balanced").result;
    const shifted = toLoadMatrix([
      [10, 90, 12, 8, 20, 15, 5, 40],
      [70, 30, 25, 11, 9, 14, 22, 3],
    ]);
    const { result, metrics } = planWithMetrics(shifted, 12, 1, 1, 4, "balanced", {
      previous: first.placement,
    });
    assert.ok(metrics.migration);
    assert.equal(metrics.migration, result.migration);
    assert.ok(result.transfers);
  });

  test("an unknown policy or an impossible shape: EplbInputError", () => {
    assert.throws(() => planWithMetrics(loads, 12, 1, 1, 4, "nonesuch"), EplbInputError);
    assert.throws(() => planWithMetrics(loads, 13, 1, 1, 4, "deepseek"), EplbInputError);
  });
});

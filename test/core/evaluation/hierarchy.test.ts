import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { hierarchyBounds, hierarchyPrice } from "../../../src/core/evaluation/hierarchy.js";
import {
  evaluatePlacement,
  lognormalLoads,
  lowerBounds,
  makeTopology,
  rebalanceExperts,
  toLoadMatrix,
} from "../../../src/index.js";

describe("the price of a strict hierarchy", () => {
  test("hand case: groups {5, 2} and {4, 3} on two 1-GPU nodes -> 7, the flat bound too", () => {
    const t = makeTopology(4, 4, 4, 2, 2);
    const { bounds, exact } = hierarchyBounds(toLoadMatrix([[5, 4, 3, 2]]), t);
    assert.deepEqual(Array.from(bounds), [7]);
    assert.equal(exact, true);
  });

  test("hand case where keeping groups on nodes costs: groups {9, 1} and {1, 1}", () => {
    // 2 nodes x 1 GPU x 2 slots, groups of two experts, no spare slot. Flat bound:
    // max(12 / 2 GPUs, the unsplittable 9) = 9. Strict: group {9, 1} fills one GPU: 10.
    const t = makeTopology(4, 4, 2, 2, 2);
    const loads = toLoadMatrix([[9, 1, 1, 1]]);
    assert.deepEqual(Array.from(lowerBounds(loads, t)), [9]);
    assert.deepEqual(Array.from(hierarchyBounds(loads, t).bounds), [10]);
    const p = hierarchyPrice(loads, [10], [9], t);
    assert.equal(p.hierarchyCost, 10 / 9);
    assert.equal(p.lossWithin, 1);
  });

  test("a global topology is refused", () => {
    assert.throws(() => hierarchyBounds(toLoadMatrix([[1, 2, 3, 4]]), makeTopology(4, 4, 1, 2, 2)));
  });

  test("property: no strict plan (balanced or deepseek) beats the bound, and it is >= the flat bound", () => {
    const shapes = [
      [16, 24, 4, 2, 4],
      [16, 20, 4, 4, 4],
      [12, 18, 6, 3, 6],
      [8, 16, 4, 2, 8],
    ] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...shapes),
        fc.integer({ min: 1, max: 1e6 }),
        fc.constantFrom("balanced", "deepseek"),
        ([E, P, G, N, GPUs], seed, policy) => {
          const loads = lognormalLoads(3, E, 1.2, seed);
          const r = rebalanceExperts(loads, P, G, N, GPUs, { policy });
          const m = evaluatePlacement(loads, r.placement, r.topology);
          const { bounds, exact } = hierarchyBounds(loads, r.topology);
          assert.ok(exact);
          for (let l = 0; l < loads.layers; l++) {
            assert.ok(bounds[l] >= m.lowerBound[l] * (1 - 1e-12));
            assert.ok(
              m.maxGpuLoad[l] >= bounds[l] * (1 - 1e-9),
              `${m.maxGpuLoad[l]} < ${bounds[l]}`,
            );
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

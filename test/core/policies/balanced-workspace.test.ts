// Tests of core/policies/balanced-workspace.ts: the balanced policy's buffers per topology, its
// work counter, and the count-search scorer that packs a count vector in a spare scope.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CountsWorkspace } from "../../../src/core/blocks/counts/index.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { BalancedWorkspace, NODE_COST } from "../../../src/core/policies/balanced-workspace.js";
import { Random } from "../../../src/index.js";

describe("BalancedWorkspace", () => {
  test("buffers sized by the topology; the reference's workspace for the shape it solves", () => {
    const ws = new BalancedWorkspace(makeTopology(8, 12, 4, 2, 4));
    assert.equal(ws.dsPhy.length, 12);
    assert.equal(ws.candCnt.length, 8);
    assert.equal(ws.nodeOfGroup.length, 4);
    assert.equal(ws.nodeMax.length, 2);
    assert.equal(ws.deepseek.groupLoad.length, 4);
    // Global path (3 groups on 2 nodes): the reference solves one group on one node.
    assert.equal(new BalancedWorkspace(makeTopology(6, 12, 3, 2, 4)).deepseek.groupLoad.length, 1);
  });

  test("work adds count-search units and branch-and-bound nodes at NODE_COST each", () => {
    const ws = new BalancedWorkspace(makeTopology(4, 8, 1, 1, 2));
    const start = ws.work;
    ws.counts.work += 100;
    ws.exact.nodes += 7;
    assert.equal(ws.work - start, 100 + 7 * NODE_COST);
    assert.equal(NODE_COST, 2);
  });
});

describe("evaluateByPacking", () => {
  test("property: the hottest GPU's experts carry the load returned; the scope is left alone", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (n, gpus, slotsPerGpu, seed) => {
          const P = gpus * slotsPerGpu;
          if (P < n) return;
          const ws = new BalancedWorkspace(makeTopology(n, P, 1, 1, gpus));
          const rng = new Random(seed);
          const weights = Array.from({ length: n }, () => Math.round(10 * rng.lognormal(1)));
          ws.scope.reset(n, gpus, slotsPerGpu);
          ws.scope.weight.set(weights);
          const count = new Int32Array(n).fill(1);
          for (let k = n; k < P; k++) count[rng.int(n)]++;
          const scopeCounts = ws.scope.count.slice();
          const cw = new CountsWorkspace();
          cw.ensure(n, P, gpus);
          const max = ws.evaluateByPacking(count, cw);
          assert.equal(cw.hotCount, slotsPerGpu);
          let hot = 0;
          for (let k = 0; k < cw.hotCount; k++) hot += weights[cw.hot[k]] / count[cw.hot[k]];
          assert.ok(Math.abs(hot - max) <= 1e-9 * Math.max(1, max), `${hot} vs ${max}`);
          assert.ok(cw.atMax >= 1 && cw.atMax <= gpus);
          const total = weights.reduce((a, b) => a + b, 0);
          assert.ok(max >= total / gpus - 1e-9, "at least the mean GPU load");
          assert.deepEqual([...ws.scope.count], [...scopeCounts], "the scope's counts untouched");
          assert.deepEqual([...ws.scope.weight.subarray(0, n)], weights);
        },
      ),
      { seed: 15, numRuns: 200 },
    );
  });

  test("all GPUs equal: every GPU is at the max", () => {
    const ws = new BalancedWorkspace(makeTopology(4, 4, 1, 1, 2));
    ws.scope.reset(4, 2, 2);
    ws.scope.weight.set([5, 5, 5, 5]);
    const cw = new CountsWorkspace();
    cw.ensure(4, 4, 2);
    assert.equal(ws.evaluateByPacking(Int32Array.from([1, 1, 1, 1]), cw), 10);
    assert.equal(cw.atMax, 2);
  });
});

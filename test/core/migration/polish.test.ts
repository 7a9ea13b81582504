// Tests of core/migration/polish.ts on small states: the descent on the smooth maximum GPU load
// by swaps never raises it, never spends more than the budget, never puts a second replica of an
// expert on a GPU and keeps the locality mode.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { DEFAULT_SLOT_GAIN } from "../../../src/core/migration/options.js";
import { polish } from "../../../src/core/migration/polish.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import {
  assertConsistent,
  assertHomesKept,
  assertNoNewDuplicate,
  driftedLayer,
  type LayerCase,
  loadCase,
  loadLayer,
  stateSmoothMax,
} from "../../helpers/migration-state.js";

/** Polishes the case with `budget` and checks every contract against the state before. */
function polishChecked(c: LayerCase, budget: number): { swapped: boolean } {
  const { ws } = loadCase(c);
  const before = ws.gpuHas.slice();
  const counts = ws.count.slice();
  const smoothBefore = stateSmoothMax(ws);
  polish(ws, budget, DEFAULT_SLOT_GAIN * ws.meanLoad, 0);
  assertConsistent(ws);
  const smoothAfter = stateSmoothMax(ws);
  assert.ok(smoothAfter <= smoothBefore * (1 + 1e-12), `smooth ${smoothBefore} -> ${smoothAfter}`);
  assert.ok(ws.changed <= budget, `changed ${ws.changed} > budget ${budget}`);
  assert.deepEqual([...ws.count], [...counts], "polish only swaps: counts kept");
  assertNoNewDuplicate(ws, before);
  assertHomesKept(ws);
  return { swapped: ws.changed > 0 };
}

describe("polish", () => {
  test("property (strict or global layers): the contracts hold, and polish does swap", () => {
    let swapped = 0;
    fc.assert(
      fc.property(
        driftedLayer({ scramble: true }),
        fc.integer({ min: 0, max: 100 }),
        (c, percent) => {
          if (polishChecked(c, Math.floor((percent * c.topology.numReplicas) / 100)).swapped)
            swapped++;
        },
      ),
      { seed: 15, numRuns: 200 },
    );
    assert.ok(swapped > 25, `only ${swapped} of 200 layers swapped`);
  });

  test("property (relaxed layers): the contracts hold, a replica stays on each home node", () => {
    fc.assert(
      fc.property(
        driftedLayer({ relaxed: true, scramble: true }),
        fc.integer({ min: 0, max: 100 }),
        (c, percent) => {
          polishChecked(c, Math.floor((percent * c.topology.numReplicas) / 100));
        },
      ),
      { seed: 16, numRuns: 150 },
    );
  });

  test("a lopsided pair of GPUs is evened by one swap; a budget of one slot allows none", () => {
    // 1 node x 2 GPUs x 2 slots: GPU loads 19 and 1; swapping expert 1 (or 0) with 2 or 3 evens them.
    const t = makeTopology(4, 4, 1, 1, 2);
    const even = loadLayer(t, [10, 9, 1, 0], [0, 1, 2, 3]).ws;
    polish(even, 2, 0, 0);
    assert.equal(even.changed, 2);
    assert.deepEqual([...even.gpuLoad].sort(), [10, 10]);
    const tight = loadLayer(t, [10, 9, 1, 0], [0, 1, 2, 3]).ws;
    polish(tight, 1, 0, 0);
    assert.equal(tight.changed, 0);
  });

  test("strict hierarchy: no swap between nodes, however lopsided", () => {
    // 2 nodes x 1 GPU: groups {0, 1} on node 0 and {2, 3} on node 1.
    const t = makeTopology(4, 4, 2, 2, 2);
    const { ws } = loadLayer(t, [10, 9, 1, 0], [0, 1, 2, 3]);
    polish(ws, 4, 0, 0);
    assert.equal(ws.changed, 0);
  });

  test("stops at stopAt, and does nothing without a temperature (all-zero loads)", () => {
    const t = makeTopology(4, 4, 1, 1, 2);
    const a = loadLayer(t, [10, 9, 1, 0], [0, 1, 2, 3]).ws;
    polish(a, 4, 0, stateSmoothMax(a));
    assert.equal(a.changed, 0);
    const zero = loadLayer(t, [0, 0, 0, 0], [0, 1, 2, 3]).ws;
    polish(zero, 4, 0, 0);
    assert.equal(zero.changed, 0);
  });

  test("a swap worth less than perSlot per changed slot is not made", () => {
    // Evening 19/1 to 10/10 lowers the smooth maximum by about 9; at 5 per slot it costs 10.
    const t = makeTopology(4, 4, 1, 1, 2);
    const { ws } = loadLayer(t, [10, 9, 1, 0], [0, 1, 2, 3]);
    polish(ws, 4, 5, 0);
    assert.equal(ws.changed, 0);
  });

  test("never a second replica of an expert on a GPU, even when it would even the loads", () => {
    // GPU 0 holds 0 and 1, GPU 1 holds 0 and 2: only swapping 1 and 2 is allowed.
    const t = makeTopology(3, 4, 1, 1, 2);
    const { ws } = loadLayer(t, [2, 8, 0], [0, 1, 0, 2]);
    const before = ws.gpuHas.slice();
    polish(ws, 4, 0, 0);
    assertNoNewDuplicate(ws, before);
    assertConsistent(ws);
  });
});

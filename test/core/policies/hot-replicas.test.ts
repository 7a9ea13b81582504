// Tests of core/policies/hot-replicas.ts: spare replicas moved from cold experts to hot ones
// while a scope's max GPU load stays within the tolerance and the ceiling.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { CountsWorkspace } from "../../../src/core/blocks/counts/index.js";
import {
  packScope,
  ScopeWorkspace,
  scopeLowerBound,
  scopeMaxLoad,
} from "../../../src/core/blocks/scope.js";
import {
  HOT_REPLICA_TOLERANCE,
  preferHotReplicas,
} from "../../../src/core/policies/hot-replicas.js";
import { Random } from "../../../src/index.js";

/** A packed scope with the given loads and counts; returns it and its max GPU load. */
function packed(weights: number[], counts: number[], gpus: number, slotsPerGpu: number) {
  const sc = new ScopeWorkspace();
  sc.reset(weights.length, gpus, slotsPerGpu);
  sc.weight.set(weights);
  sc.count.set(counts);
  scopeLowerBound(sc);
  packScope(sc);
  return { sc, max: scopeMaxLoad(sc) };
}

function largestReplica(sc: ScopeWorkspace): number {
  let max = 0;
  for (let e = 0; e < sc.numExperts; e++) max = Math.max(max, sc.weight[e] / sc.count[e]);
  return max;
}

describe("preferHotReplicas", () => {
  test("the documented example: the cold expert's four replicas go to the hot ones", () => {
    const { sc, max } = packed([200, 150, 100, 50, 25, 12], [1, 1, 1, 1, 2, 4], 2, 5);
    assert.equal(max, 268.5);
    const bestSlots = new Int32Array(10);
    const bestCounts = new Int32Array(6);
    const got = preferHotReplicas(
      sc,
      268.5,
      270.34,
      bestSlots,
      bestCounts,
      new CountsWorkspace(),
      1e4,
    );
    assert.ok(Math.abs(got - 270.3333333) < 1e-6, String(got));
    assert.deepEqual([...bestCounts], [3, 2, 2, 1, 1, 1]);
    assert.deepEqual([...sc.count.subarray(0, 6)], [3, 2, 2, 1, 1, 1]);
    assert.ok(Math.abs(scopeMaxLoad(sc) - got) < 1e-9, "the scope holds the plan returned");
  });

  test("the ceiling binds: below the better plan's load, the plan stays", () => {
    const { sc } = packed([200, 150, 100, 50, 25, 12], [1, 1, 1, 1, 2, 4], 2, 5);
    const counts = new Int32Array(6);
    const got = preferHotReplicas(
      sc,
      268.5,
      270,
      new Int32Array(10),
      counts,
      new CountsWorkspace(),
      1e4,
    );
    assert.equal(got, 268.5);
    assert.deepEqual([...sc.count.subarray(0, 6)], [1, 1, 1, 1, 2, 4]);
  });

  test("an inversion among two-replica experts is found too: the hottest expert gains one", () => {
    // Expert 3 (50) has two replicas, expert 0 (200) one: GPU loads 225 and 200 either way.
    const { sc, max } = packed([200, 150, 100, 50], [1, 2, 1, 2], 2, 3);
    const counts = new Int32Array(4);
    const got = preferHotReplicas(
      sc,
      max,
      1e9,
      new Int32Array(6),
      counts,
      new CountsWorkspace(),
      1e4,
    );
    assert.ok(got <= max * (1 + HOT_REPLICA_TOLERANCE.small));
    assert.ok(counts[0] >= 2, `counts ${[...counts]}`);
  });

  test("nothing to do: counts in load order, one replica each, or no work allowed", () => {
    const inOrder = packed([200, 150, 100, 50], [3, 2, 2, 1], 2, 4);
    assert.equal(
      preferHotReplicas(
        inOrder.sc,
        inOrder.max,
        1e9,
        new Int32Array(8),
        new Int32Array(4),
        new CountsWorkspace(),
        1e4,
      ),
      inOrder.max,
    );
    assert.deepEqual([...inOrder.sc.count.subarray(0, 4)], [3, 2, 2, 1]);
    const { sc, max } = packed([200, 150, 100, 50, 25, 12], [1, 1, 1, 1, 2, 4], 2, 5);
    assert.equal(
      preferHotReplicas(
        sc,
        max,
        1e9,
        new Int32Array(10),
        new Int32Array(6),
        new CountsWorkspace(),
        0,
      ),
      max,
    );
    assert.deepEqual([...sc.count.subarray(0, 6)], [1, 1, 1, 1, 2, 4]);
  });

  test("property: within the tolerance and ceiling, counts valid, largest replica never larger", () => {
    let moved = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (n, gpus, slotsPerGpu, seed) => {
          const P = gpus * slotsPerGpu;
          if (P <= n) return;
          const rng = new Random(seed);
          const weights = Array.from({ length: n }, () => Math.round(100 * rng.lognormal(1)) + 1);
          // Spare replicas given in reverse load order: inverted whenever two experts differ.
          const order = weights.map((_, i) => i).sort((a, b) => weights[a] - weights[b]);
          const counts = new Array<number>(n).fill(1);
          for (let k = 0; k < P - n; k++) counts[order[k % n]]++;
          const { sc, max } = packed(weights, counts, gpus, slotsPerGpu);
          const levelBefore = largestReplica(sc);
          const ceiling = max * (1 + rng.next() * 0.02);
          const got = preferHotReplicas(
            sc,
            max,
            ceiling,
            new Int32Array(P),
            new Int32Array(n),
            new CountsWorkspace(),
            1e6,
          );
          const tolerance =
            n <= 24 && P <= 64 ? HOT_REPLICA_TOLERANCE.small : HOT_REPLICA_TOLERANCE.large;
          assert.ok(got <= Math.min(max * (1 + tolerance), Math.max(max, ceiling)) + 1e-9);
          assert.ok(
            Math.abs(scopeMaxLoad(sc) - got) <= 1e-9 * got,
            "the scope holds the plan returned",
          );
          const c = [...sc.count.subarray(0, n)];
          assert.equal(
            c.reduce((a, b) => a + b, 0),
            P,
          );
          assert.ok(c.every((x) => x >= 1));
          assert.ok(largestReplica(sc) <= levelBefore + 1e-12);
          if (got !== max) moved++;
        },
      ),
      { seed: 15, numRuns: 200 },
    );
    assert.ok(moved > 10, `only ${moved} scopes changed`);
  });
});

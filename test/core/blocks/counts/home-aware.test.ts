import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { homeAwareCounts } from "../../../../src/core/blocks/counts/home-aware.js";
import { CountsWorkspace } from "../../../../src/core/blocks/counts/workspace.js";
import { Random } from "../../../../src/index.js";

/** The larger of the two bounds for given counts: largest replica, busiest node's home share. */
function bounds(
  w: ArrayLike<number>,
  count: ArrayLike<number>,
  home: Int32Array,
  nodes: number,
  gpn: number,
) {
  let replica = 0;
  const forced = new Array<number>(nodes).fill(0);
  for (let e = 0; e < w.length; e++) {
    replica = Math.max(replica, w[e] / count[e]);
    forced[home[e]] += w[e] / count[e];
  }
  return Math.max(replica, Math.max(...forced) / gpn);
}

describe("homeAwareCounts", () => {
  test("the documented example: node 0's forced load drops from 120 to 60", () => {
    const count = new Int32Array(4);
    const v = homeAwareCounts(
      new Float64Array([60, 60, 10, 10]),
      4,
      6,
      new Int32Array([0, 0, 1, 1]),
      2,
      1,
      count,
    );
    assert.equal(v, 60);
    assert.deepEqual(Array.from(count), [2, 2, 1, 1]);
  });

  test("the extra replicas go to the bound that binds: a hot expert, or the hot node's experts", () => {
    // Node 1's one expert is the heaviest replica: water-filling would split it.
    const count = new Int32Array(4);
    homeAwareCounts(
      new Float64Array([10, 10, 10, 100]),
      4,
      5,
      new Int32Array([0, 0, 1, 1]),
      2,
      1,
      count,
    );
    assert.deepEqual(Array.from(count), [1, 1, 1, 2]);
    // Node 0 homes 90 on one GPU, above node 1's expert 3 (40): one of node 0's equal experts is split
    // (the lowest index), where water-filling would split expert 3.
    homeAwareCounts(
      new Float64Array([30, 30, 30, 40]),
      4,
      5,
      new Int32Array([0, 0, 0, 1]),
      2,
      1,
      count,
    );
    assert.deepEqual(Array.from(count), [2, 1, 1, 1]);
  });

  test("counts sum to the replicas, each at least 1; the result is the final counts' larger bound", () => {
    const rng = new Random(6);
    const ws = new CountsWorkspace();
    for (let run = 0; run < 300; run++) {
      const nodes = 1 + rng.int(4);
      const gpn = 1 + rng.int(3);
      const perNode = 1 + rng.int(5);
      const E = nodes * perNode;
      const R = E + rng.int(2 * E);
      const home = Int32Array.from({ length: E }, (_, e) => Math.floor(e / perNode));
      const w = Float64Array.from({ length: E }, () =>
        rng.int(5) === 0 ? 0 : Math.round(rng.lognormal(1.5) * 10),
      );
      const count = new Int32Array(E).fill(-5);
      const v = homeAwareCounts(w, E, R, home, nodes, gpn, count, ws);
      assert.equal(
        count.reduce((s, c) => s + c, 0),
        R,
      );
      assert.ok(count.every((c) => c >= 1));
      const b = bounds(w, count, home, nodes, gpn);
      assert.ok(Math.abs(v - b) <= 1e-9 * Math.max(1, b), `${v} vs ${b}`);
    }
  });

  test("with no spare slots every expert keeps one replica", () => {
    const count = new Int32Array(3);
    const v = homeAwareCounts(
      new Float64Array([5, 1, 9]),
      3,
      3,
      new Int32Array([0, 0, 0]),
      1,
      2,
      count,
    );
    assert.deepEqual(Array.from(count), [1, 1, 1]);
    assert.equal(v, 9);
  });
});

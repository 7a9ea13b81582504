import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { estimateMaxLoad } from "../../../../src/core/blocks/counts/estimate.js";
import {
  type CountSearchOptions,
  searchReplicaCounts,
} from "../../../../src/core/blocks/counts/search.js";
import { CountsWorkspace } from "../../../../src/core/blocks/counts/workspace.js";
import { waterFillCounts } from "../../../../src/core/blocks/replication.js";
import { Random } from "../../../../src/index.js";

const options: CountSearchOptions = {
  target: 0,
  maxTrials: 5000,
  breadth: 8,
  beamWidth: 4,
  patience: 8,
};

/** A random layer: G GPUs of S slots, n experts, water-filled counts to start from. */
function layer(rng: Random) {
  const G = 1 + rng.int(8);
  const S = 1 + rng.int(4);
  const n = Math.max(1, Math.min(G * S, 1 + rng.int(G * S)));
  const w = Float64Array.from({ length: n }, () =>
    rng.int(6) === 0 ? 0 : Math.round(rng.lognormal(1.2) * 20),
  );
  const count = new Int32Array(n);
  waterFillCounts(w, n, G * S, count);
  return { G, S, n, w, count };
}

describe("searchReplicaCounts", () => {
  test("the documented example: from the water-filled 232 to an optimal 196.666...", () => {
    const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
    const count = new Int32Array(8);
    waterFillCounts(w, 8, 16, count);
    assert.equal(estimateMaxLoad(w, 8, count, 8, 2), 232);
    const v = searchReplicaCounts(w, 8, count, 8, 2, options);
    assert.ok(Math.abs(v - 590 / 3) < 1e-9, `${v}`);
    assert.equal(estimateMaxLoad(w, 8, count, 8, 2), v);
  });

  test("keeps the replica total, at least one each, never ends worse, and returns its vector's estimate", () => {
    const rng = new Random(7);
    const ws = new CountsWorkspace();
    for (let run = 0; run < 150; run++) {
      const { G, S, n, w, count } = layer(rng);
      const start = estimateMaxLoad(w, n, count, G, S);
      const v = searchReplicaCounts(
        w,
        n,
        count,
        G,
        S,
        { ...options, beamWidth: 1 + rng.int(4) },
        ws,
      );
      assert.equal(
        count.reduce((s, c) => s + c, 0),
        G * S,
      );
      assert.ok(count.every((c) => c >= 1));
      assert.ok(v <= start, `${v} > ${start}`);
      assert.equal(estimateMaxLoad(w, n, count, G, S), v);
    }
  });

  test("deterministic: the same call gives the same counts, fresh workspace or reused", () => {
    const rng = new Random(8);
    const shared = new CountsWorkspace();
    for (let run = 0; run < 40; run++) {
      const { G, S, n, w, count } = layer(rng);
      const again = count.slice();
      const a = searchReplicaCounts(w, n, count, G, S, options, shared);
      const b = searchReplicaCounts(w, n, again, G, S, options);
      assert.equal(a, b);
      assert.deepEqual(count, again);
    }
  });

  test("stops at once when the start meets the target: counts untouched, one trial of work", () => {
    const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
    const count = new Int32Array(8);
    waterFillCounts(w, 8, 16, count);
    const start = count.slice();
    const ws = new CountsWorkspace();
    const v = searchReplicaCounts(w, 8, count, 8, 2, { ...options, target: 232, trialCost: 5 }, ws);
    assert.equal(v, 232);
    assert.deepEqual(count, start);
    assert.equal(ws.work, 5);
  });

  test("maxWork bounds the work spent, in trials of trialCost", () => {
    const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
    for (const maxWork of [0, 30, 100, 1000]) {
      const count = new Int32Array(8);
      waterFillCounts(w, 8, 16, count);
      const ws = new CountsWorkspace();
      searchReplicaCounts(w, 8, count, 8, 2, { ...options, maxWork, trialCost: 10 }, ws);
      assert.ok(
        ws.work <= Math.max(10, Math.floor(maxWork / 10) * 10),
        `${ws.work} for ${maxWork}`,
      );
    }
    // Without a budget the same search does more: the bound above is what held it back.
    const count = new Int32Array(8);
    waterFillCounts(w, 8, 16, count);
    const ws = new CountsWorkspace();
    searchReplicaCounts(w, 8, count, 8, 2, { ...options, trialCost: 10 }, ws);
    assert.ok(ws.work > 100, `${ws.work}`);
  });

  test("a custom evaluate scores the vectors instead of the estimate", () => {
    const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
    const count = new Int32Array(8);
    waterFillCounts(w, 8, 16, count);
    const own = new CountsWorkspace();
    let calls = 0;
    // Scores as the estimate would, on its own workspace, and reports the hot GPU back.
    const evaluate = (c: Int32Array, ws: CountsWorkspace) => {
      calls++;
      const v = estimateMaxLoad(w, 8, c, 8, 2, own);
      ws.hot.set(own.hot.subarray(0, own.hotCount));
      ws.hotCount = own.hotCount;
      ws.atMax = own.atMax;
      return v + 1000;
    };
    const v = searchReplicaCounts(w, 8, count, 8, 2, { ...options, target: 1000, evaluate });
    assert.ok(calls > 1);
    assert.ok(Math.abs(v - 1000 - 590 / 3) < 1e-9, `${v}`);
  });
});

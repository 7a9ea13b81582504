/**
 * src/core/routing/summary.ts: the `metrics.locality` JSON of `eplb plan` / `eplb eval` says what
 * dispatchStats measures, rounded to six digits so the same run writes the same bytes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dispatchStats } from "../../../src/core/routing/dispatch.js";
import { makeRouting } from "../../../src/core/routing/routing.js";
import { dispatchSummary, localityMetrics, round6 } from "../../../src/core/routing/summary.js";
import { placementFromPhy2log } from "../../../src/index.js";

// 3 nodes x 1 GPU x 2 slots, 2 layers of 4 experts; 3 tokens, top-2, one per node.
const shape = { numGpus: 3, numNodes: 3 };
const placement = placementFromPhy2log(
  [
    [0, 1, 2, 3, 0, 1],
    [3, 2, 1, 0, 2, 3],
  ],
  4,
);
const previous = placementFromPhy2log(
  [
    [0, 1, 2, 3, 0, 2],
    [0, 1, 2, 3, 0, 1],
  ],
  4,
);
const routing = makeRouting({
  tokens: 3,
  layers: 2,
  k: 2,
  experts: 4,
  // [token][layer][k]
  topk: new Int32Array([0, 2, 3, 1, 1, 3, 0, -1, 2, 3, 1, 2]),
  rank: new Int32Array([0, 1, 2]),
});

describe("dispatchSummary", () => {
  test("is dispatchStats rounded to six digits, traffic nested [src][dst]", () => {
    const s = dispatchStats(routing, placement, shape);
    const j = dispatchSummary(routing, placement, shape);
    assert.equal(j.remoteNodesPerToken, round6(s.remoteNodesPerToken));
    assert.equal(j.crossNodeShare, round6(s.crossNodeShare));
    assert.deepEqual(j.perLayer, Array.from(s.perLayer, round6));
    assert.equal(j.traffic.length, 3);
    for (let src = 0; src < 3; src++) {
      assert.deepEqual(
        j.traffic[src],
        Array.from(s.traffic.subarray(src * 3, src * 3 + 3), round6),
      );
    }
    // Plain JSON: arrays, not typed arrays, so JSON.stringify writes lists.
    assert.ok(Array.isArray(j.perLayer) && Array.isArray(j.traffic[0]));
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(j))), JSON.stringify(j));
  });

  test("a hand-counted case: one token on node 0 choosing an expert held only on node 1", () => {
    const r = makeRouting({
      tokens: 1,
      layers: 1,
      k: 2,
      experts: 2,
      topk: new Int32Array([0, 1]),
      rank: new Int32Array([0]),
    });
    const j = dispatchSummary(r, placementFromPhy2log([[0, 1]], 2), { numGpus: 2, numNodes: 2 });
    assert.deepEqual(j, {
      remoteNodesPerToken: 1,
      perLayer: [1],
      crossNodeShare: 0.5,
      traffic: [
        [0, 1],
        [0, 0],
      ],
    });
  });
});

describe("localityMetrics", () => {
  test("names the routing's shape and where tokens come from", () => {
    const m = localityMetrics(routing, placement, shape);
    assert.deepEqual(m.routing, { tokens: 3, layers: 2, k: 2, sources: "ranks" });
    const spread = makeRouting({ ...routing, rank: null });
    assert.equal(localityMetrics(spread, placement, shape).routing.sources, "spread");
  });

  test("has `previous` only when a previous placement is given, measured on the same routing", () => {
    const without = localityMetrics(routing, placement, shape);
    assert.ok(!("previous" in without));
    const withPrevious = localityMetrics(routing, placement, shape, previous);
    assert.deepEqual(withPrevious.placement, without.placement);
    assert.deepEqual(withPrevious.previous, dispatchSummary(routing, previous, shape));
    assert.notDeepEqual(withPrevious.previous, withPrevious.placement);
  });
});

test("round6 keeps six significant digits, at any scale", () => {
  assert.equal(round6(0.123456789), 0.123457);
  assert.equal(round6(123456789), 123457000);
  assert.equal(round6(1 / 3), 0.333333);
  assert.equal(round6(0), 0);
  assert.equal(round6(2), 2);
});

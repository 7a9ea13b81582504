/**
 * src/cli/locality-summary.ts: the summary lines of `metrics.locality` and `metrics.hierarchy`
 * say the figures of the JSON they summarise, and only the ones present.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hierarchyLines, localityLines } from "../../src/cli/locality-summary.js";
import type { LocalityMetrics } from "../../src/core/routing/summary.js";
import type { HierarchyMetrics } from "../../src/pipeline/locality.js";

const routing = { tokens: 1000, layers: 2, k: 8, sources: "ranks" as const };
const placement = {
  remoteNodesPerToken: 1.23456,
  perLayer: [1.1, 1.36912],
  crossNodeShare: 0.4567,
  traffic: [
    [0, 12, 3],
    [7, 0, 40.5],
    [1, 2, 0],
  ],
};

describe("localityLines", () => {
  test("remote nodes per token with the worst layer, off-node share and the busiest link", () => {
    const [first, second] = localityLines({ routing, placement }, "plan");
    assert.equal(
      first,
      "  remote nodes per token (routing: 1000 tokens x 2 layers, top-8, sources from ranks)  plan 1.235 (worst layer 1.369)",
    );
    assert.equal(
      second,
      "  choices served off the token's node: 45.7%; busiest link node 1 -> 2: 40.5 token copies",
    );
  });

  test("the previous placement's figures beside the plan's, and spread sources said so", () => {
    const m: LocalityMetrics = {
      routing: { ...routing, sources: "spread" },
      placement,
      previous: { ...placement, remoteNodesPerToken: 2, crossNodeShare: 0.5 },
    };
    const [first, second] = localityLines(m, "placement");
    assert.match(
      first,
      /sources spread over nodes\) {2}placement 1\.235 \(worst layer 1\.369\) {2}previous 2\.000$/,
    );
    assert.match(second, /^ {2}choices served off the token's node: 45\.7% \(previous 50\.0%\); /);
  });

  test("no traffic at all names no link copies", () => {
    const quiet = {
      ...placement,
      traffic: [
        [0, 0],
        [0, 0],
      ],
      perLayer: [0],
      remoteNodesPerToken: 0,
    };
    assert.match(
      localityLines({ routing, placement: quiet }, "plan")[1],
      /busiest link node 0 -> 0: 0 token copies$/,
    );
  });
});

describe("hierarchyLines", () => {
  const h: HierarchyMetrics = {
    bound: [7],
    hierarchyCost: 1.05,
    worstHierarchyCost: 1.1,
    lossWithin: 1.001,
    worstLossWithin: 1.002,
    exact: true,
  };

  test("the hierarchy's own cost and the plan's loss within it", () => {
    assert.deepEqual(hierarchyLines(h, "plan"), [
      "  strict hierarchy (groups kept on nodes): its own cost 1.050x the flat lower bound (worst layer 1.100); this plan is 0.10% above the hierarchy's bound (worst layer 0.20%)",
    ]);
  });

  test("a bound from a search (not exact) is said to be an upper bound", () => {
    assert.match(
      hierarchyLines({ ...h, exact: false }, "plan")[0],
      / \(bound from a swap search: at most this\)$/,
    );
  });

  test("what --relaxed would plan, with remote nodes per token only under a routing", () => {
    const relaxed = { balancedness: 0.98765, maxOverLowerBound: 1.0123, offNodeShare: 0.0456 };
    const lines = hierarchyLines({ ...h, relaxed }, "placement");
    assert.equal(lines.length, 2);
    assert.equal(
      lines[1],
      "  --relaxed would plan: max GPU load / lower bound 1.012, balancedness 0.988, 4.6% of load off its group's node",
    );
    const routed = hierarchyLines(
      { ...h, relaxed: { ...relaxed, remoteNodesPerToken: 1.5 } },
      "plan",
    );
    assert.match(routed[1], /, 1\.500 remote nodes per token$/);
  });
});

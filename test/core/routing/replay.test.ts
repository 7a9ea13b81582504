import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RoutingReplay } from "../../../src/core/routing/replay.js";
import {
  dispatchStats,
  makeRouting,
  makeTopology,
  placementFromPhy2log,
  simulate,
} from "../../../src/index.js";

describe("RoutingReplay: dispatch figures of a simulation's placements", () => {
  // 2 nodes x 1 GPU x 2 slots, 4 experts; one token per step from node 0 choosing 0 and 3
  const topology = makeTopology(4, 4, 1, 2, 2);
  const step = makeRouting({
    tokens: 2,
    layers: 1,
    k: 2,
    experts: 4,
    topk: new Int32Array([0, 3, 2, -1]),
    rank: null,
  });

  test("a placement's figure is dispatchStats' on each step; none lays experts in order", () => {
    const placement = placementFromPhy2log([[0, 3, 1, 2]], 4);
    const replay = new RoutingReplay(topology, () => step, 3);
    replay.judge(0, 3, { eplb: placement, none: null });
    const r = replay.results();
    const want = dispatchStats(step, placement, topology);
    assert.equal(r.eplb.remoteNodesPerToken, want.remoteNodesPerToken);
    assert.equal(r.eplb.crossNodeShare, want.crossNodeShare);
    assert.deepEqual(Array.from(r.eplb.perStep), new Array(3).fill(want.remoteNodesPerToken));
    // in order: experts {0, 1} on node 0, {2, 3} on node 1
    const inOrder = dispatchStats(step, placementFromPhy2log([[0, 1, 2, 3]], 4), topology);
    assert.equal(r.none.remoteNodesPerToken, inOrder.remoteNodesPerToken);
  });

  test("the simulator's onJudged hook hands every judged chunk's placements over", () => {
    const trace = {
      steps: 6,
      layers: 1,
      experts: 4,
      data: new Float64Array(Array.from({ length: 24 }, (_, i) => 1 + (i % 4))),
    };
    const calls: [number, number, string[]][] = [];
    const replay = new RoutingReplay(topology, () => step, 4);
    simulate(trace, {
      numReplicas: 4,
      numGroups: 1,
      numNodes: 2,
      numGpus: 2,
      interval: 2,
      window: 2,
      onJudged: (start, len, placements) => {
        calls.push([start, len, Object.keys(placements)]);
        replay.judge(start, len, placements);
      },
    });
    assert.deepEqual(calls, [
      [2, 2, ["eplb", "deepseek", "oracle", "none"]],
      [4, 2, ["eplb", "deepseek", "oracle", "none"]],
    ]);
    assert.equal(replay.results().eplb.perStep.length, 4);
  });
});

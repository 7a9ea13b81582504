import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RoutingReplay } from "../../../src/core/routing/replay.js";
import { windowRouting } from "../../../src/core/routing/window.js";
import { makeRouting, makeTopology, simulate } from "../../../src/index.js";
import { routedTrace } from "../../helpers/routed-trace.js";

describe("windowRouting: a rebalance window's tokens", () => {
  const step = (s: number) =>
    makeRouting({
      tokens: 3,
      layers: 1,
      k: 1,
      experts: 16,
      topk: new Int32Array([3 * s, 3 * s + 1, 3 * s + 2]),
      rank: new Int32Array([s, s, s]),
    });

  test("concatenates the steps' tokens in order, ranks kept", () => {
    const r = windowRouting(() => 3, step, 1, 3);
    assert.deepEqual(Array.from(r.topk), [3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(r.rank ?? []), [1, 1, 1, 2, 2, 2]);
  });

  test("samples evenly down to maxTokens, reading each step once", () => {
    const read: number[] = [];
    const r = windowRouting(
      () => 3,
      (s) => {
        read.push(s);
        return step(s);
      },
      0,
      4,
      4,
    );
    // rows floor(i * 12 / 4) = 0, 3, 6, 9 of the 12
    assert.deepEqual(Array.from(r.topk), [0, 3, 6, 9]);
    assert.deepEqual(read, [0, 1, 2, 3]);
  });

  test("refuses an empty window and a step of the wrong size", () => {
    assert.throws(() => windowRouting(() => 3, step, 2, 2), /to/);
    assert.throws(() => windowRouting(() => 4, step, 0, 1), /must hold 4 tokens/);
  });
});

describe("simulate with localityPlanning: eplb's rebalances plan with the window's routing", () => {
  // The target's shape, small: 8 nodes x 2 GPUs, 64 experts on 80 slots, top-6, 2 layers.
  const shape = { numReplicas: 80, numGroups: 1, numNodes: 8, numGpus: 16 };
  const { trace, steps } = routedTrace({
    steps: 12,
    tokens: 2000,
    layers: 2,
    experts: 64,
    k: 6,
    seed: 1,
  });
  const topology = makeTopology(64, 80, 1, 8, 16);

  function run(withLocality: boolean) {
    const replay = new RoutingReplay(topology, (s) => steps[s], 8);
    const windows: [number, number][] = [];
    const r = simulate(trace, {
      ...shape,
      interval: 4,
      window: 4,
      onJudged: replay.judge.bind(replay),
      ...(withLocality
        ? {
            localityPlanning: {
              routing: (from: number, to: number) => {
                windows.push([from, to]);
                return windowRouting(
                  () => 2000,
                  (s) => steps[s],
                  from,
                  to,
                );
              },
              localityGain: 0.005,
            },
          }
        : {}),
    });
    return { r, dispatch: replay.results(), windows };
  }
  const plain = run(false);
  const local = run(true);

  test("plans each rebalance on the window before it", () => {
    assert.deepEqual(local.windows, [
      [0, 4],
      [4, 8],
    ]);
    assert.deepEqual(local.r.localityPlanning, { localityGain: 0.005 });
    assert.equal(plain.r.localityPlanning, undefined);
  });

  test("fewer realised remote nodes per token, balancedness at most 2.5 points lower", () => {
    const before = plain.dispatch.eplb.remoteNodesPerToken;
    const after = local.dispatch.eplb.remoteNodesPerToken;
    assert.ok(after < before * 0.9, `${after} vs ${before}`);
    const b0 = plain.r.eplb.meanRealizedBalancedness;
    const b1 = local.r.eplb.meanRealizedBalancedness;
    assert.ok(b1 > b0 - 0.025, `${b1} vs ${b0}`);
    // The baselines plan without the routing: the same placements either way.
    assert.equal(
      local.dispatch.deepseek.remoteNodesPerToken,
      plain.dispatch.deepseek.remoteNodesPerToken,
    );
    assert.equal(
      local.r.baselines.oracle?.meanRealizedBalancedness,
      plain.r.baselines.oracle?.meanRealizedBalancedness,
    );
  });
});

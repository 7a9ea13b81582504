import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  createDispatchWorkspace,
  layerRemoteNodes,
  maskWords,
  nodeMasks,
  tokenRemoteNodes,
} from "../../../src/blocks.js";
import {
  dispatchStats,
  EplbInputError,
  makeRouting,
  placementFromPhy2log,
} from "../../../src/index.js";

// 4 nodes x 1 GPU x 2 slots, 6 experts:
// node 0 {0, 1}, node 1 {2, 3}, node 2 {4, 5}, node 3 {0, 2}
const placement = placementFromPhy2log([[0, 1, 2, 3, 4, 5, 0, 2]], 6);
const shape = { numGpus: 4, numNodes: 4 };

function routing(choices: number[][], rank: number[] | null, experts = 6) {
  const k = choices[0].length;
  return makeRouting({
    tokens: choices.length,
    layers: 1,
    k,
    experts,
    topk: new Int32Array(choices.flat()),
    rank: rank === null ? null : new Int32Array(rank),
  });
}

describe("dispatch rule: hand-checked tokens", () => {
  test("node masks: one bit per node holding the expert", () => {
    assert.deepEqual(
      Array.from(nodeMasks(placement, 0, shape)),
      [0b1001, 0b0001, 0b1010, 0b0010, 0b0100, 0b0100],
    );
  });

  test("local experts are served locally, the rest by one copy per remote node", () => {
    // from node 0: 0 local; 2 on nodes 1 and 3; 4 on node 2 -> nodes 1 (tie, lowest) and 2
    const s = dispatchStats(routing([[0, 2, 4]], [0]), placement, shape);
    assert.equal(s.remoteNodesPerToken, 2);
    assert.equal(s.crossNodeShare, 2 / 3);
    const traffic = new Float64Array(16);
    traffic[0 * 4 + 1] = 1;
    traffic[0 * 4 + 2] = 1;
    assert.deepEqual(s.traffic, traffic);
  });

  test("greedy cover takes the node holding most pending experts before the lowest index", () => {
    // from node 2: expert 0 on nodes 0 and 3, expert 2 on nodes 1 and 3 -> node 3 alone
    const ws = createDispatchWorkspace(2, 4);
    const masks = nodeMasks(placement, 0, shape);
    assert.equal(tokenRemoteNodes(new Int32Array([0, 2]), 0, masks, 2, ws), 1);
    assert.deepEqual(Array.from(ws.nodes.subarray(0, ws.picked)), [3]);
    assert.equal(ws.remoteChoices, 2);
  });

  test("ties between nodes covering as many experts go to the lowest node index", () => {
    // from node 1: {0, 1} on node 0 (2 pending), {4, 5} on node 2 (2 pending), 0 on node 3
    const ws = createDispatchWorkspace(4, 4);
    const masks = nodeMasks(placement, 0, shape);
    assert.equal(tokenRemoteNodes(new Int32Array([4, 5, 0, 1]), 0, masks, 1, ws), 2);
    assert.deepEqual(Array.from(ws.nodes.subarray(0, ws.picked)), [0, 2]);
  });

  test("an unknown source node spreads the token evenly over the nodes", () => {
    // expert 0 lives on nodes 0 and 3: from nodes 1 and 2 it costs one copy to node 0
    const s = dispatchStats(routing([[0]], null), placement, shape);
    assert.equal(s.remoteNodesPerToken, 0.5);
    assert.equal(s.crossNodeShare, 0.5);
    const traffic = new Float64Array(16);
    traffic[1 * 4 + 0] = 0.25;
    traffic[2 * 4 + 0] = 0.25;
    assert.deepEqual(s.traffic, traffic);
  });

  test("-1 choices are ignored; a token with none in a layer is not dispatched and not counted", () => {
    const s = dispatchStats(
      routing(
        [
          [-1, 4],
          [-1, -1],
        ],
        [0, 0],
      ),
      placement,
      shape,
    );
    assert.equal(s.remoteNodesPerToken, 1);
    assert.equal(s.routedTokens, 1);
    assert.equal(s.choices, 1);
    assert.equal(s.crossNodeShare, 1);
    assert.equal(s.tokens, 2);
  });

  test("a repeated expert in a token's choices costs one copy", () => {
    const s = dispatchStats(routing([[4, 4]], [0]), placement, shape);
    assert.equal(s.remoteNodesPerToken, 1);
  });

  test("the source node is the rank's node: floor(rank / gpusPerNode)", () => {
    // 2 nodes x 2 GPUs x 1 slot: node 0 holds experts {0, 1}, node 1 {2, 3}
    const p = placementFromPhy2log([[0, 1, 2, 3]], 4);
    const r = makeRouting({
      tokens: 2,
      layers: 1,
      k: 1,
      experts: 4,
      topk: new Int32Array([2, 2]),
      rank: new Int32Array([1, 3]),
    });
    const s = dispatchStats(r, p, { numGpus: 4, numNodes: 2 });
    assert.deepEqual(Array.from(s.perLayer), [0.5]);
    assert.deepEqual(Array.from(s.traffic), [0, 1, 0, 0]);
  });

  test("per layer and overall: the mean over tokens, then over (token, layer)", () => {
    // 2 layers on 2 nodes x 1 GPU x 1 slot; layer 0: node 0 {0}, node 1 {1}; layer 1 swapped
    const p = placementFromPhy2log(
      [
        [0, 1],
        [1, 0],
      ],
      2,
    );
    const r = makeRouting({
      tokens: 2,
      layers: 2,
      k: 1,
      experts: 2,
      topk: new Int32Array([0, 0, 1, 0]), // token 0: local, remote; token 1: remote, remote
      rank: new Int32Array([0, 0]),
    });
    const s = dispatchStats(r, p, { numGpus: 2, numNodes: 2 });
    assert.deepEqual(Array.from(s.perLayer), [0.5, 1]);
    assert.equal(s.remoteNodesPerToken, 0.75);
  });

  test("a layer no token routes (a dense layer) shows 0 and is left out of the overall mean", () => {
    const p = placementFromPhy2log(
      [
        [0, 1],
        [0, 1],
      ],
      2,
    );
    const r = makeRouting({
      tokens: 1,
      layers: 2,
      k: 1,
      experts: 2,
      topk: new Int32Array([-1, 1]),
      rank: new Int32Array([0]),
    });
    const s = dispatchStats(r, p, { numGpus: 2, numNodes: 2 });
    assert.deepEqual(Array.from(s.perLayer), [0, 1]);
    assert.equal(s.routedTokens, 1);
    assert.equal(s.remoteNodesPerToken, 1);
  });

  test("more than 32 nodes: masks span several words", () => {
    const n = 40;
    const p = placementFromPhy2log([Array.from({ length: n }, (_, e) => e)], n);
    const masks = nodeMasks(p, 0, { numGpus: n, numNodes: n });
    assert.equal(maskWords(n), 2);
    assert.equal(masks[39 * 2 + 1], 1 << 7);
    const ws = createDispatchWorkspace(3, n);
    assert.equal(tokenRemoteNodes(new Int32Array([35, 39, 0]), 0, masks, 35, ws), 2);
    assert.deepEqual(Array.from(ws.nodes.subarray(0, ws.picked)), [0, 39]);
    const r = makeRouting({
      tokens: 1,
      layers: 1,
      k: 3,
      experts: n,
      topk: new Int32Array([35, 39, 0]),
      rank: new Int32Array([35]),
    });
    const s = dispatchStats(r, p, { numGpus: n, numNodes: n });
    assert.equal(s.traffic[35 * n + 39], 1);
    assert.equal(s.traffic[35 * n + 0], 1);
  });
});

describe("dispatch rule: the per-layer kernel", () => {
  test("layerRemoteNodes sums what dispatchStats averages, and follows a changed placement", () => {
    const r = routing(
      [
        [0, 2, 4],
        [1, 3, 5],
      ],
      [0, 3],
    );
    const masks = nodeMasks(placement, 0, shape);
    const ws = createDispatchWorkspace(3, 4);
    const d = layerRemoteNodes(r, 0, masks, 1, ws);
    const s = dispatchStats(r, placement, shape);
    assert.equal(d.remoteNodes, s.remoteNodesPerToken * 2);
    assert.equal(d.remoteChoices / d.choices, s.crossNodeShare);
    // token 1 from node 3 {0, 2}: experts 1, 3, 5 on nodes 0, 1, 2 -> 3 copies
    assert.deepEqual(d, { remoteNodes: 5, remoteChoices: 5, choices: 6, routedTokens: 2 });
    // expert 4 onto node 3 in place of expert 0: node 3 {4, 2} covers token 0's remote experts
    const moved = placementFromPhy2log([[0, 1, 2, 3, 4, 5, 4, 2]], 6);
    nodeMasks(moved, 0, shape, masks);
    assert.equal(layerRemoteNodes(r, 0, masks, 1, ws).remoteNodes, 1 + 3);
  });
});

describe("dispatch rule: refusals", () => {
  test("layers or experts unlike the placement's", () => {
    const r = routing([[0]], [0], 7);
    assert.throws(() => dispatchStats(r, placement, shape), /routing.experts \(7\)/);
    assert.throws(() => dispatchStats(r, placement, shape), EplbInputError);
  });

  test("a rank beyond the cluster", () => {
    assert.throws(
      () => dispatchStats(routing([[0]], [4]), placement, shape),
      /routing.rank\[0\] \(4\) must be a GPU of the cluster \(below 4\)/,
    );
  });

  test("a choice of an expert the placement does not hold", () => {
    // a hand-built placement (the readers refuse one without every expert)
    const p = {
      layers: 1,
      numReplicas: 2,
      numExperts: 2,
      phy2log: new Int32Array([0, 0]),
      replicaRank: new Int32Array([0, 1]),
      logcnt: new Int32Array([2, 0]),
    };
    const r = makeRouting({
      tokens: 1,
      layers: 1,
      k: 1,
      experts: 2,
      topk: new Int32Array([1]),
      rank: new Int32Array([0]),
    });
    assert.throws(() => dispatchStats(r, p, { numGpus: 2, numNodes: 2 }), /no replica/);
  });
});

describe("dispatch rule: properties", () => {
  const arb = fc
    .record({
      nodes: fc.integer({ min: 1, max: 5 }),
      experts: fc.integer({ min: 1, max: 8 }),
      k: fc.integer({ min: 1, max: 4 }),
      tokens: fc.integer({ min: 0, max: 6 }),
      seed: fc.integer({ min: 0, max: 1e6 }),
      known: fc.boolean(),
    })
    .map(({ nodes, experts, k, tokens, seed, known }) => {
      let x = seed;
      const next = (m: number) => {
        x = (x * 1103515245 + 12345) % 2147483648;
        return x % m;
      };
      // every expert once, then random extras: 2 slots per node... padded to a multiple of nodes
      const slots = Math.ceil((experts + next(4)) / nodes) * nodes;
      const row = Array.from({ length: slots }, (_, s) => (s < experts ? s : next(experts)));
      for (let i = row.length - 1; i > 0; i--) {
        const j = next(i + 1);
        [row[i], row[j]] = [row[j], row[i]];
      }
      const topk = Array.from({ length: tokens * k }, () => next(experts + 1) - 1);
      const rank = known ? Array.from({ length: tokens }, () => next(nodes)) : null;
      return { nodes, experts, k, tokens, row, topk, rank };
    });

  test("an unknown source is the mean over the nodes as sources (the shortcuts agree)", () => {
    fc.assert(
      fc.property(arb, ({ nodes, experts, k, tokens, row, topk }) => {
        const p = placementFromPhy2log([row], experts);
        const shape = { numGpus: nodes, numNodes: nodes };
        const of = (rank: Int32Array | null) =>
          dispatchStats(
            makeRouting({ tokens, layers: 1, k, experts, topk: new Int32Array(topk), rank }),
            p,
            shape,
          );
        const spread = of(null);
        const traffic = new Float64Array(nodes * nodes);
        let remote = 0;
        let share = 0;
        for (let src = 0; src < nodes; src++) {
          const s = of(new Int32Array(tokens).fill(src));
          remote += s.remoteNodesPerToken / nodes;
          share += s.crossNodeShare / nodes;
          for (let i = 0; i < traffic.length; i++) traffic[i] += s.traffic[i] / nodes;
        }
        assert.ok(Math.abs(spread.remoteNodesPerToken - remote) < 1e-9);
        assert.ok(Math.abs(spread.crossNodeShare - share) < 1e-9);
        for (let i = 0; i < traffic.length; i++) {
          assert.ok(Math.abs(spread.traffic[i] - traffic[i]) < 1e-9);
        }
      }),
    );
  });

  test("remote nodes per token stay within min(k, nodes - 1); one node never sends", () => {
    fc.assert(
      fc.property(arb, ({ nodes, experts, k, tokens, row, topk, rank }) => {
        const p = placementFromPhy2log([row], experts);
        const r = makeRouting({
          tokens,
          layers: 1,
          k,
          experts,
          topk: new Int32Array(topk),
          rank: rank && new Int32Array(rank),
        });
        const s = dispatchStats(r, p, { numGpus: nodes, numNodes: nodes });
        assert.ok(s.remoteNodesPerToken <= Math.min(k, nodes - 1) + 1e-12);
        assert.ok(s.crossNodeShare >= 0 && s.crossNodeShare <= 1 + 1e-12);
        let sent = 0;
        for (let i = 0; i < nodes; i++) assert.equal(s.traffic[i * nodes + i], 0);
        for (const v of s.traffic) sent += v;
        assert.ok(Math.abs(sent - s.remoteNodesPerToken * s.routedTokens) < 1e-9);
        const everywhere = placementFromPhy2log(
          [Array.from({ length: experts * nodes }, (_, i) => i % experts)],
          experts,
        );
        assert.equal(
          dispatchStats(r, everywhere, { numGpus: nodes, numNodes: nodes }).remoteNodesPerToken,
          0,
        );
      }),
    );
  });
});

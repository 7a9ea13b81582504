// Tests of core/migration/trades.ts on small strict hierarchical layers: a group traded between
// two nodes when drift made one node's groups heavier, and the node excess that triggers it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { STRICT } from "../../../src/core/migration/options.js";
import { findGroupHomes } from "../../../src/core/migration/previous.js";
import { loadState } from "../../../src/core/migration/state.js";
import { buildGroupTrade, nodeExcess } from "../../../src/core/migration/trades.js";
import { placementFromPhy2log } from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import {
  assertConsistent,
  driftedLayer,
  loadCase,
  loadLayer,
} from "../../helpers/migration-state.js";

/** Per node, the total load of the groups whose replicas `row` holds there (strict layers). */
function nodeGroupLoads(
  row: ArrayLike<number>,
  weights: ArrayLike<number>,
  nodes: number,
): number[] {
  const slotsPerNode = row.length / nodes;
  const out = new Array<number>(nodes).fill(0);
  const seen = new Set<number>();
  for (let s = 0; s < row.length; s++) {
    if (seen.has(row[s])) continue;
    seen.add(row[s]);
    out[Math.floor(s / slotsPerNode)] += weights[row[s]];
  }
  return out;
}

/** Sum of exp((L - max) / tau) with tau = 2% of the mean, as the trade compares node loads. */
function nodeSmooth(loads: number[], tau: number): number {
  const max = Math.max(...loads);
  return max + tau * Math.log(loads.reduce((a, l) => a + Math.exp((l - max) / tau), 0));
}

describe("buildGroupTrade", () => {
  test("property: within budget, exactly two groups' slots change, strict kept, nodes more even", () => {
    let traded = 0;
    fc.assert(
      fc.property(driftedLayer(), fc.integer({ min: 20, max: 100 }), (c, percent) => {
        const { ws, loads } = loadCase(c);
        if (ws.mode !== STRICT) return;
        const t = c.topology;
        const budget = Math.floor((percent * t.numReplicas) / 100);
        const changed = buildGroupTrade(ws, budget);
        if (changed < 0) return;
        traded++;
        const row = ws.trade.row;
        assert.ok(changed <= budget, `changed ${changed} > budget ${budget}`);
        let diff = 0;
        for (let s = 0; s < t.numReplicas; s++) if (row[s] !== c.previous[s]) diff++;
        assert.equal(diff, changed);
        const homes = new Int32Array(t.numGroups);
        assert.equal(findGroupHomes(row, 0, t, STRICT, homes, new Int32Array(0)), -1);
        assert.equal(new Set(row).size, t.numExperts, "every expert keeps a replica");
        const total = c.weights.reduce((a, b) => a + b, 0);
        const tau = (0.02 * total) / t.numNodes;
        const before = nodeSmooth(nodeGroupLoads(c.previous, c.weights, t.numNodes), tau);
        const after = nodeSmooth(nodeGroupLoads(row, c.weights, t.numNodes), tau);
        assert.ok(after < before, `node smooth max ${before} -> ${after}`);
        // The traded layer loads as a later state of the same layer.
        loadState(ws, loads, 0, row, 0, false);
        assert.equal(ws.changed, changed);
        assertConsistent(ws);
      }),
      { seed: 31, numRuns: 500 },
    );
    assert.ok(traded > 15, `only ${traded} of 500 layers traded`);
  });

  test("a small case: the only trade within a two-slot budget; none within one slot", () => {
    // 2 nodes x 1 GPU x 3 slots, one expert per group: node 0 holds {0, 0, 1}, node 1 {2, 3, 3}.
    const t = makeTopology(4, 6, 4, 2, 2);
    const { ws } = loadLayer(t, [12, 4, 3, 0], [0, 0, 1, 2, 3, 3]);
    assert.equal(buildGroupTrade(ws, 2), 2);
    assert.deepEqual([...ws.trade.row], [0, 0, 2, 1, 3, 3]);
    assert.equal(buildGroupTrade(ws, 1), -1);
  });

  test("no trade when the nodes are already even, or all loads are zero", () => {
    const t = makeTopology(4, 4, 4, 2, 2);
    assert.equal(buildGroupTrade(loadLayer(t, [5, 5, 5, 5], [0, 1, 2, 3]).ws, 4), -1);
    assert.equal(buildGroupTrade(loadLayer(t, [0, 0, 0, 0], [0, 1, 2, 3]).ws, 4), -1);
  });
});

describe("nodeExcess", () => {
  const t = makeTopology(4, 6, 4, 2, 2);

  test("zero against a fresh plan with the same node loads, positive against a more even one", () => {
    const row = [0, 0, 1, 2, 3, 3];
    const { ws } = loadLayer(t, [12, 4, 3, 0], row);
    assert.equal(nodeExcess(ws, placementFromPhy2log([row], 4), 0), 0);
    // Fresh: node loads 12 and 7 against ours 16 and 3.
    const even = placementFromPhy2log(
      [
        [3, 3, 3],
        [0, 0, 3, 1, 2, 2],
      ].slice(1),
      4,
    );
    assert.ok(nodeExcess(ws, even, 0) > 0.1);
    // The other way round the state is the more even one: negative.
    const evenState = loadLayer(t, [12, 4, 3, 0], [0, 0, 3, 1, 2, 2]).ws;
    assert.ok(nodeExcess(evenState, placementFromPhy2log([row], 4), 0) < 0);
  });

  test("all-zero fresh node loads: zero, not a division by zero", () => {
    const { ws } = loadLayer(t, [0, 0, 0, 0], [0, 0, 1, 2, 3, 3]);
    assert.equal(nodeExcess(ws, placementFromPhy2log([[0, 0, 1, 2, 3, 3]], 4), 0), 0);
  });
});

// Tests of core/policies/balanced-scopes.ts: the balanced policy's candidates of one layer (the
// strict scopes, the relaxed two-level plan, the reference's plan polished), the rescue test and
// the work budget.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { EXACT_LIMITS } from "../../../src/core/blocks/exact.js";
import { makeTopology, type Topology } from "../../../src/core/model/topology.js";
import {
  layerWorkBudget,
  planRelaxed,
  planStrict,
  polishDeepseek,
  rescuable,
} from "../../../src/core/policies/balanced-scopes.js";
import { BalancedWorkspace } from "../../../src/core/policies/balanced-workspace.js";
import { planHierarchicalLayer, referenceShape } from "../../../src/core/policies/deepseek.js";
import { smallLayer } from "../../helpers/small-layers.js";

/** GPU loads of a layer (layer-local slots and counts). */
function gpuLoads(t: Topology, loads: Float64Array, phy: Int32Array, cnt: Int32Array): number[] {
  const out = new Array<number>(t.numGpus).fill(0);
  for (let s = 0; s < t.numReplicas; s++) {
    out[Math.floor(s / t.slotsPerGpu)] += loads[phy[s]] / cnt[phy[s]];
  }
  return out;
}

/** Asserts that `cnt` tallies `phy` and every expert has a slot. */
function assertValidLayer(t: Topology, phy: Int32Array, cnt: Int32Array): void {
  const tally = new Array<number>(t.numExperts).fill(0);
  for (let s = 0; s < t.numReplicas; s++) tally[phy[s]]++;
  assert.deepEqual([...cnt.subarray(0, t.numExperts)], tally);
  assert.ok(
    tally.every((c) => c >= 1),
    "every expert has a slot",
  );
}

function scopesOf(t: Topology): number {
  return t.hierarchical && t.numNodes > 1 ? t.numNodes : 1;
}

describe("layerWorkBudget", () => {
  test("the documented examples, and one scope per node only when hierarchical", () => {
    assert.equal(layerWorkBudget(makeTopology(16, 20, 1, 1, 4)), 1440);
    assert.equal(layerWorkBudget(makeTopology(8, 16, 1, 1, 4)), 12960);
    const allowance = (n: number, P: number) =>
      20 * (n + P) + (n <= EXACT_LIMITS.experts && P <= EXACT_LIMITS.replicas ? 6000 : 0);
    // 64 experts on 4 nodes: four scopes of 16 experts and 20 slots.
    assert.equal(layerWorkBudget(makeTopology(64, 80, 8, 4, 16)), 2 * 4 * allowance(16, 20));
    // 3 groups on 2 nodes is the global path: one scope of everything (one tiny-scope bonus).
    assert.equal(layerWorkBudget(makeTopology(6, 8, 3, 2, 4)), 2 * allowance(6, 8));
    assert.equal(layerWorkBudget(makeTopology(6, 8, 3, 2, 4)), 12560);
  });
});

describe("planStrict", () => {
  test("property: a valid layer, groups on one node, nodeMax per scope; a rescue keeps scopes at or below it", () => {
    fc.assert(
      fc.property(smallLayer(), ({ topology: t, loads }) => {
        const ws = new BalancedWorkspace(t);
        planStrict(ws, loads, 0, 1e-4, 0);
        assertValidLayer(t, ws.candPhy, ws.candCnt);
        const scopes = scopesOf(t);
        const slotsPer = t.numReplicas / scopes;
        if (scopes > 1) {
          for (let s = 0; s < t.numReplicas; s++) {
            const group = Math.floor(ws.candPhy[s] / t.expertsPerGroup);
            assert.equal(ws.nodeOfGroup[group], Math.floor(s / slotsPer), `slot ${s}`);
          }
        }
        const g = gpuLoads(t, loads, ws.candPhy, ws.candCnt);
        const gpusPer = t.numGpus / scopes;
        for (let node = 0; node < scopes; node++) {
          const max = Math.max(...g.slice(node * gpusPer, (node + 1) * gpusPer));
          assert.ok(
            Math.abs(ws.nodeMax[node] - max) <= 1e-9 * Math.max(1, max),
            `nodeMax[${node}]`,
          );
        }
        // A rescue at the lowest scope max: that scope (and any at it) keeps its slots.
        const limit = Math.min(...ws.nodeMax.subarray(0, scopes));
        const before = ws.candPhy.slice();
        const kept = [...ws.nodeMax.subarray(0, scopes)].map((m) => m <= limit);
        planStrict(ws, loads, 0, 1e-4, limit);
        assertValidLayer(t, ws.candPhy, ws.candCnt);
        for (let node = 0; node < scopes; node++) {
          if (!kept[node]) continue;
          const span = [node * slotsPer, (node + 1) * slotsPer] as const;
          assert.deepEqual([...ws.candPhy.subarray(...span)], [...before.subarray(...span)]);
        }
      }),
      { seed: 15, numRuns: 150 },
    );
  });
});

describe("planRelaxed", () => {
  test("property: a valid layer with a replica of every expert on its group's node", () => {
    let hierarchicalRuns = 0;
    fc.assert(
      fc.property(smallLayer(), ({ topology: t, loads }) => {
        if (scopesOf(t) === 1) return;
        hierarchicalRuns++;
        const ws = new BalancedWorkspace(t);
        // The strict pass chooses the groups' nodes, as planBalancedLayer runs it first.
        planStrict(ws, loads, 0, 1e-4, 0);
        planRelaxed(ws, loads, 0, 1e-4);
        assertValidLayer(t, ws.relaxPhy, ws.relaxCnt);
        for (let e = 0; e < t.numExperts; e++) {
          const home = ws.nodeOfGroup[Math.floor(e / t.expertsPerGroup)];
          let onHome = false;
          for (let s = home * t.slotsPerNode; s < (home + 1) * t.slotsPerNode; s++) {
            if (ws.relaxPhy[s] === e) onHome = true;
          }
          assert.ok(onHome, `expert ${e} has no replica on node ${home}`);
        }
      }),
      { seed: 16, numRuns: 400 },
    );
    assert.ok(hierarchicalRuns > 25, `only ${hierarchicalRuns} hierarchical layers`);
  });
});

describe("polishDeepseek", () => {
  test("property: never raises the max, keeps counts and each node's replicas, no new duplicate", () => {
    fc.assert(
      fc.property(smallLayer(), ({ topology: t, loads }) => {
        const ws = new BalancedWorkspace(t);
        planHierarchicalLayer(
          loads,
          0,
          referenceShape(t),
          ws.dsPhy,
          ws.dsRank,
          0,
          ws.dsCnt,
          0,
          ws.deepseek,
        );
        const before = ws.dsPhy.slice();
        const counts = ws.dsCnt.slice();
        const maxBefore = Math.max(...gpuLoads(t, loads, ws.dsPhy, ws.dsCnt));
        const duplicates = (phy: Int32Array) => {
          let d = 0;
          for (let g = 0; g < t.numGpus; g++) {
            const slots = [...phy.subarray(g * t.slotsPerGpu, (g + 1) * t.slotsPerGpu)];
            d += slots.length - new Set(slots).size;
          }
          return d;
        };
        polishDeepseek(ws, loads, 0);
        assert.deepEqual([...ws.dsCnt], [...counts]);
        const maxAfter = Math.max(...gpuLoads(t, loads, ws.dsPhy, ws.dsCnt));
        assert.ok(maxAfter <= maxBefore * (1 + 1e-9), `max ${maxBefore} -> ${maxAfter}`);
        const scopes = t.hierarchical ? t.numNodes : 1;
        const slotsPer = t.numReplicas / scopes;
        for (let node = 0; node < scopes; node++) {
          const span = [node * slotsPer, (node + 1) * slotsPer] as const;
          const sorted = (a: Int32Array) => [...a.subarray(...span)].sort((x, y) => x - y);
          assert.deepEqual(sorted(ws.dsPhy), sorted(before), `node ${node}'s replicas`);
        }
        assert.ok(duplicates(ws.dsPhy) <= duplicates(before));
      }),
      { seed: 17, numRuns: 150 },
    );
  });
});

describe("rescuable", () => {
  test("false only when a scope above the limit is proven optimal", () => {
    const ws = new BalancedWorkspace(makeTopology(8, 12, 2, 2, 4));
    ws.nodeMax.set([10, 20]);
    ws.nodeProven.set([1, 0]);
    assert.equal(rescuable(ws, 15), true);
    ws.nodeProven.set([0, 1]);
    assert.equal(rescuable(ws, 15), false);
    assert.equal(rescuable(ws, 20), true);
    // A global shape has one scope: only scope 0 counts.
    const global = new BalancedWorkspace(makeTopology(6, 12, 3, 2, 4));
    global.nodeMax.set([10, 99]);
    global.nodeProven.set([0, 1]);
    assert.equal(rescuable(global, 15), true);
  });
});

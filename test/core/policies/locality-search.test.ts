// Tests of core/policies/locality-search.ts: node-set intersection, and the local search that
// moves co-chosen experts onto common nodes within a GPU load cap.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { synthesizeRouting } from "../../../src/blocks.js";
import { makeTopology, type Topology } from "../../../src/core/model/topology.js";
import {
  type LocalityLayer,
  LocalitySearch,
  setsMeet,
} from "../../../src/core/policies/locality-search.js";
import {
  type CoActivationGraph,
  coActivationGraph,
  layerCoActivation,
} from "../../../src/core/routing/coactivation.js";
import { makeRouting, planBalanced } from "../../../src/index.js";
import { loadsOf } from "../../helpers/routing-loads.js";

/** Co-activation weight of pairs that share a node (each pair once). */
function keptWeight(t: Topology, phy: Int32Array, g: CoActivationGraph): number {
  const nodes = Array.from({ length: t.numExperts }, () => new Set<number>());
  for (let s = 0; s < t.numReplicas; s++) nodes[phy[s]].add(Math.floor(s / t.slotsPerNode));
  let kept = 0;
  for (let a = 0; a < g.experts; a++) {
    for (let i = g.start[a]; i < g.start[a + 1]; i++) {
      const b = g.neighbor[i];
      if (b > a && [...nodes[a]].some((n) => nodes[b].has(n))) kept += g.weight[i];
    }
  }
  return kept;
}

function gpuLoads(t: Topology, layer: LocalityLayer, phy: Int32Array): number[] {
  const out = new Array<number>(t.numGpus).fill(0);
  for (let s = 0; s < t.numReplicas; s++) {
    out[Math.floor(s / t.slotsPerGpu)] +=
      layer.loads[layer.loadOffset + phy[s]] / layer.cnt[phy[s]];
  }
  return out;
}

describe("setsMeet", () => {
  test("the documented example, offsets, disjoint sets, a meeting in a later word", () => {
    assert.equal(setsMeet(new Uint32Array([0, 1]), 0, new Uint32Array([3, 1]), 0, 2), true);
    assert.equal(setsMeet(new Uint32Array([0, 1]), 0, new Uint32Array([3, 2]), 0, 2), false);
    assert.equal(setsMeet(new Uint32Array([9, 4, 0]), 1, new Uint32Array([4, 0]), 0, 2), true);
    assert.equal(
      setsMeet(new Uint32Array([0x80000000]), 0, new Uint32Array([0x80000000]), 0, 1),
      true,
    );
    assert.equal(setsMeet(new Uint32Array([1, 1]), 0, new Uint32Array([1, 1]), 0, 0), false);
  });
});

describe("LocalitySearch.run", () => {
  // 2 nodes x 1 GPU x 2 slots; tokens choose {0, 1} and {2, 3}, which start split over nodes.
  const t = makeTopology(4, 4, 1, 2, 2);
  const r = makeRouting({
    tokens: 2,
    layers: 1,
    k: 2,
    experts: 4,
    topk: new Int32Array([0, 1, 2, 3]),
    rank: null,
  });
  const graph = coActivationGraph(layerCoActivation(r, 0));
  const layer = (): LocalityLayer => ({
    loads: new Float64Array([5, 5, 5, 5]),
    loadOffset: 0,
    phy: new Int32Array([0, 2, 1, 3]),
    cnt: new Int32Array([1, 1, 1, 1]),
  });

  test("the documented example: both pairs end on one node", () => {
    const search = new LocalitySearch(t);
    assert.equal(search.run(layer(), graph, 10, null, 1e6), 2);
    assert.deepEqual([...search.phy], [3, 2, 1, 0]);
    assert.ok(search.moves >= 1);
  });

  test("a gate that refuses every move, no budget, or a cap too low: the slots stay", () => {
    const search = new LocalitySearch(t);
    const refuse = { accept: () => false };
    assert.equal(search.run(layer(), graph, 10, null, 1e6, refuse), 0);
    assert.deepEqual([...search.phy], [0, 2, 1, 3]);
    assert.equal(search.moves, 0);
    assert.equal(search.run(layer(), graph, 10, null, 0), 0);
    assert.deepEqual([...search.phy], [0, 2, 1, 3]);
    // Unequal loads: {0, 1} on one GPU would carry 18 > the cap of 12.
    const heavy = { ...layer(), loads: new Float64Array([9, 9, 1, 1]) };
    search.run(heavy, graph, 12, null, 1e6);
    assert.ok(Math.max(...gpuLoads(t, heavy, search.phy)) <= 12);
  });

  test("home nodes pin a replica: an expert homed on node 0 keeps its replica there", () => {
    const search = new LocalitySearch(t);
    // Expert 0 must stay on node 0 and expert 2 on node 1 (where they start).
    const home = new Int32Array([0, -1, 1, -1]);
    search.run(layer(), graph, 10, home, 1e6);
    assert.ok([...search.phy.subarray(0, 2)].includes(0));
    assert.ok([...search.phy.subarray(2, 4)].includes(2));
  });

  test("property: counts kept, cap held, no new duplicate, the gain returned is the weight kept", () => {
    let gained = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 50, max: 100 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        (nodes, gpusPerNode, slotsPerGpu, percent, seed) => {
          const G = nodes * gpusPerNode;
          const P = G * slotsPerGpu;
          const E = Math.max(4, Math.round((percent * P) / 100));
          if (E > P) return;
          const topo = makeTopology(E, P, 1, nodes, G);
          const routing = synthesizeRouting({ tokens: 200, layers: 1, experts: E, k: 2, seed });
          const loads = loadsOf(routing);
          const plan = planBalanced(loads, topo);
          const start: LocalityLayer = {
            loads: loads.data,
            loadOffset: 0,
            phy: plan.phy2log.slice(),
            cnt: plan.logcnt.slice(),
          };
          const g = coActivationGraph(layerCoActivation(routing, 0));
          const cap = Math.max(...gpuLoads(topo, start, start.phy)) * 1.05;
          const search = new LocalitySearch(topo);
          const gain = search.run(start, g, cap, null, 1e6);
          const phy = search.phy;
          assert.deepEqual(
            [...phy].sort((a, b) => a - b),
            [...start.phy].sort((a, b) => a - b),
          );
          assert.ok(Math.max(...gpuLoads(topo, start, phy)) <= cap * (1 + 1e-9));
          const dup = (p: Int32Array) => {
            let d = 0;
            for (let k = 0; k < G; k++) {
              const slots = [...p.subarray(k * slotsPerGpu, (k + 1) * slotsPerGpu)];
              d += slots.length - new Set(slots).size;
            }
            return d;
          };
          assert.ok(dup(phy) <= dup(start.phy));
          const moved = keptWeight(topo, phy, g) - keptWeight(topo, start.phy, g);
          assert.ok(Math.abs(gain - moved) <= 1e-9 * Math.max(1, moved), `${gain} vs ${moved}`);
          assert.ok(gain >= 0);
          if (gain > 0) gained++;
          assert.deepEqual([...start.phy], [...plan.phy2log], "the layer given is not written");
        },
      ),
      { seed: 15, numRuns: 80 },
    );
    assert.ok(gained > 20, `only ${gained} of 80 layers gained`);
  });
});

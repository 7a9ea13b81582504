import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  coActivationGraph,
  layerCoActivation,
  localizePlacement,
  synthesizeRouting,
} from "../../../src/blocks.js";
import { evaluatePlacement } from "../../../src/core/evaluation/metrics.js";
import type { LoadMatrix } from "../../../src/core/model/matrix.js";
import {
  type Placement,
  placementFromPhy2log,
  placementViolation,
} from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { LocalitySearch } from "../../../src/core/policies/locality-search.js";
import {
  dispatchStats,
  makeRouting,
  planBalanced,
  planWithRouting,
  Random,
  rebalanceExperts,
  synthRouting,
} from "../../../src/index.js";
import { referenceRemoteNodes } from "../../helpers/dispatch-reference.js";
import { gpuMax, loadsOf, split } from "../../helpers/routing-loads.js";

describe("locality-aware placement", () => {
  test("target: 8 nodes x 2 GPUs, 64 experts on 80 slots, top-6: held-out remote nodes per token >= 30% lower, balancedness within 1%", () => {
    // 100,000 synthetic tokens (8 clusters, affinity 0.8, lognormal 1.0, seed 1): the plan sees
    // the first half, the figures are measured on the second.
    const all = synthesizeRouting({ tokens: 100_000, layers: 4, experts: 64, k: 6, seed: 1 });
    const [plan, held] = split(all, 50_000);
    const t = makeTopology(64, 80, 1, 8, 16);
    const loads = loadsOf(plan);
    const base = rebalanceExperts(loads, 80, 1, 8, 16).placement;
    const local = rebalanceExperts(loads, 80, 1, 8, 16, { routing: plan }).placement;
    const shape = { numGpus: 16, numNodes: 8 };
    const before = dispatchStats(held, base, shape).remoteNodesPerToken;
    const after = dispatchStats(held, local, shape).remoteNodesPerToken;
    assert.ok(after <= 0.7 * before, `remote nodes per token ${before} -> ${after}`);
    const heldLoads = loadsOf(held);
    const bBase = evaluatePlacement(heldLoads, base, shape).balancedness;
    const bLocal = evaluatePlacement(heldLoads, local, shape).balancedness;
    assert.ok(bLocal >= 0.99 * bBase, `balancedness ${bBase} -> ${bLocal}`);
    assert.equal(placementViolation(local), null);
    for (let l = 0; l < 4; l++) {
      assert.ok(gpuMax(loads, local, t, l) <= gpuMax(loads, base, t, l) * 1.005 * (1 + 1e-9));
    }
    // The library entry gives the same plan as rebalanceExperts.
    assert.deepEqual(planWithRouting(loads, t, plan).phy2log, local.phy2log);
  });

  test("a tiny case made provably better: co-chosen experts end on one node", () => {
    // 2 nodes x 1 GPU x 2 slots, equal loads; tokens choose {0, 1} or {2, 3}. The start splits
    // each pair over the nodes (1 remote node per token); pairing them on nodes halves it (a
    // token from the other node needs 1, from its own 0).
    const t = makeTopology(4, 4, 1, 2, 2);
    const base = placementFromPhy2log([[0, 2, 1, 3]], 4);
    const loads: LoadMatrix = { layers: 1, experts: 4, data: new Float64Array([5, 5, 5, 5]) };
    const routing = makeRouting({
      tokens: 4,
      layers: 1,
      k: 2,
      experts: 4,
      topk: new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]),
      rank: null,
    });
    const out = localizePlacement(loads, base, t, routing);
    assert.equal(referenceRemoteNodes(routing, base, 2, 2).overall, 1);
    assert.equal(referenceRemoteNodes(routing, out, 2, 2).overall, 0.5);
    const nodeOf = (e: number) => Math.floor(Array.from(out.phy2log).indexOf(e) / 2);
    assert.equal(nodeOf(0), nodeOf(1));
    assert.equal(nodeOf(2), nodeOf(3));
  });

  test("the load cap binds: a move that would raise the max GPU load beyond the tolerance is not made", () => {
    // Same tokens, but expert 1 is heavy: putting 0 and 1 together would overload a GPU.
    const t = makeTopology(4, 4, 1, 2, 2);
    const base = placementFromPhy2log([[0, 2, 1, 3]], 4);
    const loads: LoadMatrix = { layers: 1, experts: 4, data: new Float64Array([5, 50, 5, 5]) };
    const routing = makeRouting({
      tokens: 2,
      layers: 1,
      k: 2,
      experts: 4,
      topk: new Int32Array([0, 1, 2, 3]),
      rank: null,
    });
    const out = localizePlacement(loads, base, t, routing, { localityTolerance: 0.01 });
    assert.ok(gpuMax(loads, out, t, 0) <= 55 * 1.01);
  });

  test("strict hierarchy and one node: the plan is returned unchanged", () => {
    const r = synthesizeRouting({ tokens: 500, layers: 1, experts: 16, k: 4, seed: 3 });
    const loads = loadsOf(r);
    for (const t of [makeTopology(16, 32, 4, 2, 8), makeTopology(16, 32, 1, 1, 8)]) {
      const base = planBalanced(loads, t);
      assert.equal(localizePlacement(loads, base, t, r), base);
    }
  });

  test("relaxed hierarchy: an expert with a replica on its group's home node keeps one, and tokens reach fewer nodes", () => {
    // 4 groups of 8 experts on 2 nodes (hierarchical), 32 experts on 48 slots of 8 GPUs.
    const [E, P, perNode] = [32, 48, 24];
    const r = synthesizeRouting({
      tokens: 3000,
      layers: 2,
      experts: E,
      k: 4,
      seed: 4,
      clusters: 2,
    });
    const loads = loadsOf(r);
    const t = makeTopology(E, P, 4, 2, 8);
    const base = planBalanced(loads, t, { relaxedHierarchy: true });
    const out = localizePlacement(loads, base, t, r, { relaxedHierarchy: true });
    assert.equal(placementViolation(out), null);
    for (let l = 0; l < 2; l++) {
      // The home node of each group: the node serving most of its load in the starting plan.
      for (let g = 0; g < 4; g++) {
        const served = [0, 0];
        for (let s = 0; s < P; s++) {
          const e = base.phy2log[l * P + s];
          const share = loads.data[l * E + e] / base.logcnt[l * E + e];
          if (Math.floor(e / 8) === g) served[Math.floor(s / perNode)] += share;
        }
        const home = served[1] > served[0] ? 1 : 0;
        const at = l * P + home * perNode;
        const onHome = (p: Placement, e: number) =>
          Array.from(p.phy2log.subarray(at, at + perNode)).includes(e);
        for (let e = g * 8; e < g * 8 + 8; e++) {
          if (onHome(base, e))
            assert.ok(onHome(out, e), `layer ${l} expert ${e} left node ${home}`);
        }
      }
    }
    const shape = { numGpus: 8, numNodes: 2 };
    const before = dispatchStats(r, base, shape).remoteNodesPerToken;
    const after = dispatchStats(r, out, shape).remoteNodesPerToken;
    assert.ok(after < 0.9 * before, `${before} -> ${after}`);
  });

  test("bad input is refused in one line", () => {
    const r = synthesizeRouting({ tokens: 50, layers: 2, experts: 8, k: 2 });
    const loads = loadsOf(r);
    assert.throws(
      () => rebalanceExperts(loads, 8, 1, 2, 4, { routing: r, localityTolerance: -1 }),
      /localityTolerance \(-1\) must be a finite number in \[0, 1\]/,
    );
    assert.throws(
      () =>
        rebalanceExperts(loads, 8, 1, 2, 4, {
          routing: r,
          previous: [
            [0, 1, 2, 3, 4, 5, 6, 7],
            [0, 1, 2, 3, 4, 5, 6, 7],
          ],
          localityTolerance: 2,
        }),
      /localityTolerance \(2\) must be a finite number in \[0, 1\]/,
    );
    assert.throws(
      () => rebalanceExperts(loads, 8, 1, 2, 4, { localityTolerance: 0.01 }),
      /localityTolerance \(0.01\) needs routing/,
    );
    const oneLayer = { ...loads, layers: 1, data: loads.data.subarray(0, 8) };
    assert.throws(
      () => rebalanceExperts(oneLayer, 8, 1, 2, 4, { routing: r }),
      /routing.layers \(2\) must equal the loads' layers \(1\)/,
    );
    assert.throws(
      () => rebalanceExperts(loads, 8, 1, 2, 4, { routing: r, localityTolerence: 0.1 } as object),
      /"localityTolerence"\) is not an option/,
    );
  });

  test("more than 32 nodes (40 x 1 GPU): plans, valid, tolerance held, fewer remote nodes per token", () => {
    // Node sets span two words: nodes 32..39 live in the second, so a bug there shows here.
    const all = synthesizeRouting({ tokens: 6000, layers: 2, experts: 80, k: 6, seed: 3 });
    const [plan, held] = split(all, 4000);
    const loads = loadsOf(plan);
    const t = makeTopology(80, 120, 1, 40, 40);
    const base = planBalanced(loads, t);
    const out = localizePlacement(loads, base, t, plan);
    assert.equal(placementViolation(out), null);
    for (let l = 0; l < 2; l++) {
      assert.ok(gpuMax(loads, out, t, l) <= gpuMax(loads, base, t, l) * 1.005 * (1 + 1e-9));
    }
    const shape = { numGpus: 40, numNodes: 40 };
    const before = dispatchStats(held, base, shape).remoteNodesPerToken;
    const after = dispatchStats(held, out, shape).remoteNodesPerToken;
    assert.ok(after < before * 0.97, `${before} -> ${after}`);
    // Replicas do land on the second word's nodes.
    const high = (p: Placement) =>
      [96, 216].flatMap((s) => Array.from(p.phy2log.subarray(s, s + 24)));
    assert.notDeepEqual(high(out), high(base));
    // Through the public entry points too, with and without a previous placement.
    const planned = planWithRouting(loads, t, plan);
    assert.deepEqual(planned.phy2log, out.phy2log);
    const previous = [0, 1].map((l) => Array.from(base.phy2log.subarray(l * 120, (l + 1) * 120)));
    const moved = rebalanceExperts(loads, 120, 1, 40, 40, { routing: plan, previous }).placement;
    assert.equal(placementViolation(moved), null);
    assert.ok(
      dispatchStats(plan, moved, shape).remoteNodesPerToken <
        dispatchStats(plan, base, shape).remoteNodesPerToken,
    );
  });

  test("40 nodes: the search moves an expert to its partner on node 39 (second word of the node sets)", () => {
    // 40 nodes x 1 GPU x 2 slots, expert e in slot e; tokens choose {0, 79}: 0 joins 79 on
    // node 39 (slot 78's expert goes to node 0); node 39 lives in bit 7 of the second word.
    const t = makeTopology(80, 80, 1, 40, 40);
    const r = makeRouting({
      tokens: 1,
      layers: 1,
      k: 2,
      experts: 80,
      topk: new Int32Array([0, 79]),
      rank: null,
    });
    const layer = {
      loads: new Float64Array(80).fill(1),
      loadOffset: 0,
      phy: Int32Array.from({ length: 80 }, (_, s) => s),
      cnt: new Int32Array(80).fill(1),
    };
    const search = new LocalitySearch(t);
    search.run(layer, coActivationGraph(layerCoActivation(r, 0)), 2, null, 1e6);
    assert.equal(search.moves, 1);
    assert.deepEqual([search.phy[0], search.phy[78], search.phy[79]], [78, 0, 79]);
  });

  test("the search's several-word node sets give the one-word results on <= 32 nodes", () => {
    for (const [E, P, N, G, seed] of [
      [64, 80, 8, 16, 1],
      [32, 64, 32, 32, 2],
      [48, 96, 4, 8, 3],
    ]) {
      const t = makeTopology(E, P, 1, N, G);
      const r = synthesizeRouting({ tokens: 3000, layers: 2, experts: E, k: 4, seed });
      const loads = loadsOf(r);
      const base = planBalanced(loads, t);
      for (let l = 0; l < 2; l++) {
        const graph = coActivationGraph(layerCoActivation(r, l));
        const layer = {
          loads: loads.data,
          loadOffset: l * E,
          phy: base.phy2log.subarray(l * P, (l + 1) * P),
          cnt: base.logcnt.subarray(l * E, (l + 1) * E),
        };
        const cap = gpuMax(loads, base, t, l) * 1.01;
        const one = new LocalitySearch(t);
        const two = new LocalitySearch(t, 2);
        const g1 = one.run(layer, graph, cap, null, 1e6);
        const g2 = two.run(layer, graph, cap, null, 1e6);
        assert.ok(one.moves > 0);
        assert.deepEqual([g2, two.moves, two.work, two.phy], [g1, one.moves, one.work, one.phy]);
      }
    }
  });

  test("property: valid plans (every expert kept, logcnt consistent), no new duplicate, tolerance held on the planning loads, never more remote nodes", () => {
    fc.assert(
      fc.property(
        fc.record({
          nodes: fc.integer({ min: 2, max: 4 }),
          gpusPerNode: fc.integer({ min: 1, max: 3 }),
          slotsPerGpu: fc.integer({ min: 1, max: 4 }),
          extra: fc.integer({ min: 0, max: 6 }),
          k: fc.integer({ min: 1, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
          tolerance: fc.constantFrom(0, 0.005, 0.05),
        }),
        ({ nodes, gpusPerNode, slotsPerGpu, extra, k, seed, tolerance }) => {
          const gpus = nodes * gpusPerNode;
          const P = gpus * slotsPerGpu;
          const E = Math.max(k, P - Math.min(extra, P - 1));
          if (E > P) return;
          const t = makeTopology(E, P, 1, nodes, gpus);
          const synth = synthesizeRouting({
            tokens: 300,
            layers: 2,
            experts: E,
            k,
            seed,
            clusters: Math.min(nodes, E),
          });
          // Half the cases know each token's rank.
          const r =
            seed % 2 === 0
              ? makeRouting({
                  ...synth,
                  rank: Int32Array.from({ length: 300 }, (_, i) => (i * 7) % gpus),
                })
              : synth;
          const loads = loadsOf(r);
          // Loads of unchosen experts are 0; add a little so every GPU carries some.
          const rng = new Random(seed);
          for (let i = 0; i < loads.data.length; i++) loads.data[i] += rng.next();
          const base = planBalanced(loads, t);
          const out = localizePlacement(loads, base, t, r, { localityTolerance: tolerance });
          // Counts may change (the count pass), never to an expert without a replica.
          assert.equal(placementViolation(out), null);
          for (let e = 0; e < 2 * E; e++) assert.ok(out.logcnt[e] >= 1);
          const shape = { numGpus: gpus, numNodes: nodes };
          for (let l = 0; l < 2; l++) {
            const cap = gpuMax(loads, base, t, l) * (1 + tolerance) * (1 + 1e-9);
            assert.ok(gpuMax(loads, out, t, l) <= cap);
          }
          assert.ok(
            evaluatePlacement(loads, out, shape).duplicateGpus <=
              evaluatePlacement(loads, base, shape).duplicateGpus,
          );
          const b = dispatchStats(r, base, shape).perLayer;
          const a = dispatchStats(r, out, shape).perLayer;
          for (let l = 0; l < 2; l++) assert.ok(a[l] <= b[l] + 1e-12);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("co-activation statistics", () => {
  const r = makeRouting({
    tokens: 3,
    layers: 1,
    k: 3,
    experts: 5,
    topk: new Int32Array([0, 1, 2, 2, 1, -1, 4, 4, 3]),
    rank: null,
  });

  test("pairs of each token's distinct experts, only those that occur, sorted", () => {
    const c = layerCoActivation(r, 0);
    assert.deepEqual(Array.from(c.first), [0, 0, 1, 3]);
    assert.deepEqual(Array.from(c.second), [1, 2, 2, 4]);
    assert.deepEqual(Array.from(c.count), [1, 1, 2, 1]);
    assert.equal(c.tokens, 3);
    assert.equal(layerCoActivation(r, 0, 2).tokens, 2);
    assert.throws(() => layerCoActivation(r, 1), /layer \(1\) must be an integer in 0 \.\. 0/);
  });

  test("the graph is symmetric and keeps each expert's strongest pairs", () => {
    const g = coActivationGraph(layerCoActivation(r, 0), 1);
    const nb = (e: number) => Array.from(g.neighbor.subarray(g.start[e], g.start[e + 1]));
    // expert 1's strongest pair is (1, 2); expert 0's two pairs tie at 1, both kept.
    assert.deepEqual(nb(1).sort(), [0, 2]);
    assert.deepEqual(nb(2).sort(), [0, 1]);
    assert.deepEqual(nb(3), [4]);
    for (let e = 0; e < 5; e++) for (const j of nb(e)) assert.ok(nb(j).includes(e));
  });
});

describe("synthetic routing", () => {
  test("seeded, distinct experts per token and layer, clustered, drifting", () => {
    const o = { tokens: 2000, layers: 2, experts: 32, k: 4, seed: 9, steps: 3, clusters: 4 };
    const a = synthRouting(o);
    const b = synthRouting(o);
    const s0 = a.readStep(0);
    assert.deepEqual(s0.topk, b.readStep(0).topk);
    assert.equal(a.synthetic, true);
    assert.match(a.description, /^SYNTHETIC routing/);
    for (let i = 0; i < s0.topk.length; i += 4) {
      assert.equal(new Set(s0.topk.subarray(i, i + 4)).size, 4);
    }
    assert.notDeepEqual(a.readStep(1).topk, s0.topk);
    // Co-activation concentrates: the 4 clusters' pairs (4 x 28 of 496) hold most of the counts.
    const c = layerCoActivation(s0, 0);
    const sorted = Array.from(c.count).sort((x, y) => y - x);
    const top = sorted.slice(0, 112).reduce((x, y) => x + y, 0);
    const all = sorted.reduce((x, y) => x + y, 0);
    assert.ok(top / all > 0.6, `top share ${top / all}`);
    assert.throws(() => synthRouting({ ...o, k: 33 }), /k \(33\) must be an integer in 1 \.\. 32/);
    assert.throws(() => a.readStep(3), /step \(3\)/);
  });
});

describe("dispatch kernel against the plain rule", () => {
  test("dispatchStats equals the test helper's transcription on random placements", () => {
    const rng = new Random(5);
    for (let trial = 0; trial < 20; trial++) {
      const nodes = 2 + rng.int(3);
      const gpus = nodes * (1 + rng.int(2));
      const P = gpus * (1 + rng.int(3));
      const E = Math.max(3, P - rng.int(3));
      if (E > P) continue;
      const rows: number[][] = [];
      for (let l = 0; l < 2; l++) {
        const row = Array.from({ length: P }, (_, s) => (s < E ? s : rng.int(E)));
        for (let s = P - 1; s > 0; s--) {
          const j = rng.int(s + 1);
          [row[s], row[j]] = [row[j], row[s]];
        }
        rows.push(row);
      }
      const p = placementFromPhy2log(rows, E);
      const withRank = trial % 2 === 0;
      const r = synthesizeRouting({ tokens: 200, layers: 2, experts: E, k: 3, seed: trial });
      const routed = withRank
        ? makeRouting({ ...r, rank: Int32Array.from({ length: 200 }, () => rng.int(gpus)) })
        : r;
      const got = dispatchStats(routed, p, { numGpus: gpus, numNodes: nodes });
      const want = referenceRemoteNodes(routed, p, gpus, nodes);
      assert.ok(Math.abs(got.remoteNodesPerToken - want.overall) < 1e-9);
      for (let l = 0; l < 2; l++) assert.ok(Math.abs(got.perLayer[l] - want.perLayer[l]) < 1e-9);
    }
  });
});

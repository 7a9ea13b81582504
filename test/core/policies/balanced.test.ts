import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { dropFreeDuplicates } from "../../../src/core/blocks/distinct.js";
import { offNodeShare } from "../../../src/core/blocks/locality.js";
import {
  BalancedWorkspace,
  balancedOptions,
  layerWorkBudget,
  planBalanced,
  planBalancedLayer,
} from "../../../src/core/policies/balanced.js";
import {
  DEFAULT_POLICY,
  EplbInputError,
  evaluatePlacement,
  lognormalLoads,
  makeTopology,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  planDeepseek,
  Random,
  rebalanceExperts,
  synthTrace,
  type Topology,
  toLoadMatrix,
  zipfLoads,
} from "../../../src/index.js";
import { instance as instanceArbitrary } from "../../helpers/instances.js";

const instance = instanceArbitrary();

/** Most copies of one expert on one GPU, per layer, beyond `ceil(count / scopeGpus)`. */
function excessCopies(p: Placement, t: Topology, scopeGpus: number, layer: number): number {
  const { numReplicas: P, numExperts: E, slotsPerGpu: S } = t;
  let excess = 0;
  for (let g = 0; g < t.numGpus; g++) {
    const copies = new Map<number, number>();
    for (let k = 0; k < S; k++) {
      const e = p.phy2log[layer * P + g * S + k];
      copies.set(e, (copies.get(e) ?? 0) + 1);
    }
    for (const [e, m] of copies) {
      const cap = Math.ceil(p.logcnt[layer * E + e] / scopeGpus);
      if (m > cap) excess += m - cap;
    }
  }
  return excess;
}

function layerMaxima(loads: Parameters<typeof evaluatePlacement>[0], p: Placement, t: Topology) {
  return evaluatePlacement(loads, p, { numGpus: t.numGpus, numNodes: t.numNodes }).maxGpuLoad;
}

describe("balanced policy: contract", () => {
  test("is the default policy of rebalanceExperts", () => {
    assert.equal(DEFAULT_POLICY, "balanced");
    assert.equal(rebalanceExperts([[1, 2, 3, 4]], 4, 1, 1, 2).policy, "balanced");
  });

  test("reaches the optimum 196.67 on the issue's example where deepseek gives 232", () => {
    const loads = toLoadMatrix([[600, 560, 120, 120, 20, 10, 10, 10]]);
    const t = makeTopology(8, 16, 1, 1, 8);
    const balanced = evaluatePlacement(loads, planBalanced(loads, t), { numGpus: 8 });
    const deepseek = evaluatePlacement(loads, planDeepseek(loads, t), { numGpus: 8 });
    assert.ok(Math.abs(balanced.maxGpuLoad[0] - 590 / 3) < 1e-9, `${balanced.maxGpuLoad[0]}`);
    assert.equal(deepseek.maxGpuLoad[0], 232);
    assert.equal(balanced.duplicateGpus, 0);
  });

  test("planBalancedLayer writes one layer at the given offsets and returns its max GPU load", () => {
    const t = makeTopology(8, 16, 1, 1, 8);
    const ws = new BalancedWorkspace(t);
    const loads = new Float64Array([0, 0, 0, 600, 560, 120, 120, 20, 10, 10, 10]);
    const phy = new Int32Array(20).fill(-7);
    const rank = new Int32Array(20);
    const cnt = new Int32Array(10).fill(-7);
    const max = planBalancedLayer(
      {
        loads,
        loadOffset: 3,
        phy2log: phy,
        replicaRank: rank,
        slotOffset: 4,
        logcnt: cnt,
        expertOffset: 2,
      },
      ws,
    );
    assert.deepEqual(Array.from(phy.subarray(0, 4)), [-7, -7, -7, -7]);
    assert.deepEqual(Array.from(cnt.subarray(0, 2)), [-7, -7]);
    const p = placementFromPhy2log([Array.from(phy.subarray(4))], 8);
    assert.deepEqual(Array.from(p.logcnt), Array.from(cnt.subarray(2)));
    const m = evaluatePlacement(toLoadMatrix([Array.from(loads.subarray(3))]), p, { numGpus: 8 });
    assert.equal(max, m.maxGpuLoad[0]);
    assert.equal(ws.lastSource, "balanced");
  });

  test("regression: where deepseek's plan wins through duplicates, balanced may polish it further", () => {
    // Found by the property test: 6 experts on 30 slots; the polished reference plan keeps its
    // duplicate and beats the raw reference (76.076 < 76.171).
    const loads = toLoadMatrix([[83, 42, 49, 102, 88, 90]]);
    const t = makeTopology(6, 30, 1, 2, 6);
    const mine = layerMaxima(loads, planBalanced(loads, t), t)[0];
    const ref = layerMaxima(loads, planDeepseek(loads, t), t)[0];
    assert.ok(mine < ref, `${mine} < ${ref}`);
  });

  test("regression: the relaxed hierarchy is never worse than the strict one where the reference wins", () => {
    // Found by the property test below: the strict policy searches its scopes harder when the
    // reference's plan beats it (263.25); the relaxed mode skipped that search whenever its own
    // candidate beat the reference, and returned 282.625.
    const loads = toLoadMatrix(
      [
        [0, 0, 0, 13, 23, 23, 0, 74, 47, 16, 0, 50, 31, 0, 0, 20, 0, 0, 26, 130, 165, 0, 1053, 125],
      ].map((row) => [...row, 0, 0, 0, 0, 0, 0]),
    );
    const t = makeTopology(30, 40, 30, 2, 8);
    const strict = layerMaxima(loads, planBalanced(loads, t), t)[0];
    const relaxed = layerMaxima(loads, planBalanced(loads, t, { relaxedHierarchy: true }), t)[0];
    assert.ok(relaxed <= strict, `relaxed ${relaxed} <= strict ${strict}`);
  });

  test("is deterministic: the same loads give the same plan", () => {
    const loads = lognormalLoads(3, 64, 1.2, 5);
    const t = makeTopology(64, 80, 8, 2, 16);
    for (const relaxedHierarchy of [false, true]) {
      const a = planBalanced(loads, t, { relaxedHierarchy });
      const b = planBalanced(loads, t, { relaxedHierarchy });
      assert.deepEqual(a.phy2log, b.phy2log);
      assert.deepEqual(a.replicaRank, b.replicaRank);
    }
  });

  test("bad options are EplbInputErrors naming the option", () => {
    assert.throws(
      () =>
        rebalanceExperts([[1, 2]], 2, 1, 1, 1, { relaxedHierarchy: "yes" as unknown as boolean }),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "relaxedHierarchy",
    );
    assert.throws(
      () => rebalanceExperts([[1, 2]], 2, 1, 1, 1, { epsilon: -0.1 }),
      /epsilon \(-0.1\) must be a finite number >= 0/,
    );
    assert.deepEqual(balancedOptions({ relaxedHierarchy: true, epsilon: 0 }), {
      relaxedHierarchy: true,
      epsilon: 0,
    });
  });
});

describe("balanced policy: invariants over random shapes and loads", () => {
  test("valid, keeps groups on their node, never worse than deepseek on any layer, duplicates only when unavoidable", () => {
    fc.assert(
      fc.property(instance, ({ loads, topology: t }) => {
        const p = planBalanced(loads, t);
        assert.equal(placementViolation(p), null);
        const ds = planDeepseek(loads, t);
        const mine = layerMaxima(loads, p, t);
        const ref = layerMaxima(loads, ds, t);
        const hierarchical = t.hierarchical && t.numNodes > 1;
        const scopeGpus = hierarchical ? t.gpusPerNode : t.numGpus;
        const P = t.numReplicas;
        const gs = t.expertsPerGroup;
        for (let l = 0; l < loads.layers; l++) {
          assert.ok(mine[l] <= ref[l], `layer ${l}: ${mine[l]} > deepseek ${ref[l]}`);
          // Duplicates beyond the cap only where the reference's plan (which has them) won; the
          // policy may still polish that plan below the reference's max by swaps.
          if (excessCopies(p, t, scopeGpus, l) > 0) {
            assert.ok(excessCopies(ds, t, scopeGpus, l) > 0);
          }
          if (t.hierarchical) {
            const nodeOfGroup = new Map<number, number>();
            for (let s = 0; s < P; s++) {
              const g = Math.floor(p.phy2log[l * P + s] / gs);
              const n = Math.floor(s / t.slotsPerNode);
              assert.equal(nodeOfGroup.get(g) ?? n, n, `layer ${l}: group ${g} on one node`);
              nodeOfGroup.set(g, n);
            }
          }
        }
        assert.equal(evaluatePlacement(loads, p, t).offNodeShare, 0);
      }),
      { numRuns: 2500 },
    );
  });

  test("relaxed hierarchy: valid, each group keeps a home node with a replica of every expert, never worse than strict", () => {
    fc.assert(
      fc.property(instance, ({ loads, topology: t }) => {
        const p = planBalanced(loads, t, { relaxedHierarchy: true });
        assert.equal(placementViolation(p), null);
        const strict = layerMaxima(loads, planBalanced(loads, t), t);
        const mine = layerMaxima(loads, p, t);
        const P = t.numReplicas;
        const E = t.numExperts;
        const gs = t.expertsPerGroup;
        for (let l = 0; l < loads.layers; l++) {
          assert.ok(mine[l] <= strict[l], `layer ${l}: relaxed ${mine[l]} > strict ${strict[l]}`);
          if (!t.hierarchical) continue;
          // nodesOf[e]: bit set of the nodes holding expert e.
          const nodesOf = new Array<number>(E).fill(0);
          for (let s = 0; s < P; s++) {
            nodesOf[p.phy2log[l * P + s]] |= 1 << Math.floor(s / t.slotsPerNode);
          }
          for (let g = 0; g < t.numGroups; g++) {
            let common = (1 << t.numNodes) - 1;
            for (let j = 0; j < gs; j++) common &= nodesOf[g * gs + j];
            assert.notEqual(
              common,
              0,
              `layer ${l}: group ${g} has no node holding all its experts`,
            );
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe("balanced policy: quality on standard shapes (deterministic seeds)", () => {
  test("kimi-k2 shape, lognormal sigma 1.0: mean max/lower bound <= 1.002, no duplicates", () => {
    const loads = lognormalLoads(6, 384, 1.0, 20261129);
    const t = makeTopology(384, 448, 1, 8, 64);
    const m = evaluatePlacement(loads, planBalanced(loads, t), { numGpus: 64, numNodes: 8 });
    const d = evaluatePlacement(loads, planDeepseek(loads, t), { numGpus: 64, numNodes: 8 });
    assert.ok(m.maxOverLowerBound <= 1.002, `${m.maxOverLowerBound}`);
    assert.ok(m.maxOverLowerBound < d.maxOverLowerBound);
    assert.equal(m.duplicateGpus, 0);
  });

  test("kimi-k2-decode shape (global, 5 slots per GPU), lognormal sigma 1.5, the bench's 60 layers: no duplicate replica on any GPU", () => {
    // Issue 14 item 5: every duplicate is avoidable on this shape (no expert has more replicas
    // than the 96 GPUs).
    const loads = lognormalLoads(60, 384, 1.5, 20261129);
    const t = makeTopology(384, 480, 1, 12, 96);
    assert.equal(
      evaluatePlacement(loads, planBalanced(loads, t), { numGpus: 96, numNodes: 12 }).duplicateGpus,
      0,
    );
  });

  test("hierarchical dsv3-prefill-like shape, lognormal sigma 1.5: no duplicate that an exchange removes for free", () => {
    // Issue 14 item 5: where the reference's plan wins a layer through a second replica on one
    // GPU, the policy takes the exchange that removes it whenever the layer's max does not rise
    // (9 -> 5 pairs on an eplb synth trace of this shape, seed 1); the plan is a fixed point.
    const trace = synthTrace({ steps: 10, layers: 58, experts: 256, sigma: 1.5, seed: 1 });
    const data = new Float64Array(58 * 256);
    const step = new Float64Array(58 * 256);
    for (let k = 0; k < 10; k++) {
      trace.readStep(k, step, 0);
      for (let i = 0; i < data.length; i++) data[i] += step[i];
    }
    const loads = { layers: 58, experts: 256, data };
    const t = makeTopology(256, 288, 8, 4, 32);
    const p = planBalanced(loads, t);
    assert.equal(dropFreeDuplicates(loads, p, t), p);
    const duplicates = evaluatePlacement(loads, p, t).duplicateGpus;
    assert.ok(duplicates <= 5, `${duplicates} (layer, GPU) pairs hold an expert twice`);
  });

  test("a balanced plan keeps no duplicate that an exchange removes without raising the max", () => {
    fc.assert(
      fc.property(instance, ({ loads, topology: t }) => {
        const p = planBalanced(loads, t);
        assert.equal(dropFreeDuplicates(loads, p, t), p);
      }),
      { numRuns: 300 },
    );
  });

  test("spare replicas go to hot experts: vLLM's [200, 150, 100, 50, 25, 12] on 2 GPUs x 5 slots", () => {
    // Issue 14 item 3. Counts [1, 1, 1, 1, 2, 4] reach the optimum 268.5 but give the coldest
    // expert 4 replicas and the hottest 1; within the tolerance (and never above deepseek's
    // plan) the plan gives replicas in load order.
    const weight = [200, 150, 100, 50, 25, 12];
    const r = rebalanceExperts([weight, [...weight].reverse()], 10, 1, 1, 2);
    const ds = rebalanceExperts([weight, [...weight].reverse()], 10, 1, 1, 2, {
      policy: "deepseek",
    });
    const loads = toLoadMatrix([weight, [...weight].reverse()]);
    const mine = evaluatePlacement(loads, r.placement, { numGpus: 2 });
    const theirs = evaluatePlacement(loads, ds.placement, { numGpus: 2 });
    for (let l = 0; l < 2; l++) {
      assert.ok(mine.maxGpuLoad[l] <= theirs.maxGpuLoad[l]);
      const w = loads.data.subarray(l * 6, l * 6 + 6);
      for (let a = 0; a < 6; a++) {
        for (let b = 0; b < 6; b++) {
          if (w[a] > w[b])
            assert.ok(r.logcnt[l][a] >= r.logcnt[l][b], `layer ${l}: ${r.logcnt[l]}`);
        }
      }
    }
    assert.deepEqual(r.logcnt[0], [3, 2, 2, 1, 1, 1]);
  });

  test("dsv3-decode144 shape (2 slots per GPU): better than deepseek on average", () => {
    const loads = lognormalLoads(6, 256, 0.5, 20261129);
    const t = makeTopology(256, 288, 8, 18, 144);
    const m = evaluatePlacement(loads, planBalanced(loads, t), { numGpus: 144, numNodes: 18 });
    const d = evaluatePlacement(loads, planDeepseek(loads, t), { numGpus: 144, numNodes: 18 });
    assert.ok(m.maxOverLowerBound < d.maxOverLowerBound - 0.005, `${m.maxOverLowerBound}`);
  });

  test("dsv3-decode64 shape: relaxed hierarchy reaches balancedness >= 0.97 and reports off-node load", () => {
    const loads = lognormalLoads(6, 256, 1.0, 20261129);
    const t = makeTopology(256, 320, 8, 8, 64);
    const strict = evaluatePlacement(loads, planBalanced(loads, t), {
      numGpus: 64,
      numNodes: 8,
      numGroups: 8,
    });
    const relaxed = evaluatePlacement(loads, planBalanced(loads, t, { relaxedHierarchy: true }), {
      numGpus: 64,
      numNodes: 8,
      numGroups: 8,
    });
    assert.ok(strict.balancedness < 0.85, `${strict.balancedness}`);
    assert.ok(relaxed.balancedness >= 0.97, `${relaxed.balancedness}`);
    assert.equal(strict.offNodeShare, 0);
    assert.ok(relaxed.offNodeShare > 0 && relaxed.offNodeShare < 0.5, `${relaxed.offNodeShare}`);
  });
});

describe("offNodeShare", () => {
  test("counts load served away from the node serving most of its group", () => {
    // 2 groups of 1 expert, 2 nodes of 2 slots; expert 0 has 3 replicas, one on node 1.
    const share = offNodeShare(toLoadMatrix([[8, 4]]), placementFromPhy2log([[0, 0, 0, 1]], 2), {
      numGroups: 2,
      numNodes: 2,
    });
    assert.ok(Math.abs(share - 2 / 9) < 1e-12);
  });

  test("is 0 for global topologies and one node", () => {
    const p = placementFromPhy2log([[0, 1, 0, 1]], 2);
    assert.equal(offNodeShare(toLoadMatrix([[8, 4]]), p, { numGroups: 1, numNodes: 2 }), 0);
    assert.equal(offNodeShare(toLoadMatrix([[8, 4]]), p, { numGroups: 2, numNodes: 1 }), 0);
    assert.equal(offNodeShare(toLoadMatrix([[8, 4]]), p, { numGroups: 3, numNodes: 2 }), 0);
  });
});

describe("balanced policy: bounded search work", () => {
  /** Loads that defeat early stops: idle experts and ties, or one expert far above the rest. */
  function adversarial(kind: "ties" | "hot", layers: number, experts: number) {
    const rng = new Random(11);
    const data = new Float64Array(layers * experts);
    for (let i = 0; i < data.length; i++) {
      const u = rng.next();
      data[i] = kind === "ties" ? (u < 0.4 ? 0 : u < 0.7 ? 10 : 100) : 10 + rng.int(5);
    }
    if (kind === "hot") for (let l = 0; l < layers; l++) data[l * experts + rng.int(experts)] = 800;
    return { layers, experts, data };
  }

  test("layerWorkBudget is linear in the layer's size, with a fixed extra for tiny scopes", () => {
    assert.equal(layerWorkBudget(makeTopology(16, 20, 1, 1, 4)), 1440);
    assert.equal(layerWorkBudget(makeTopology(64, 80, 1, 1, 8)), 5760);
    // Two nodes of 8 experts and 10 slots: both within the exact solver's limits.
    assert.equal(layerWorkBudget(makeTopology(16, 20, 4, 2, 4)), 2 * 2 * (20 * 18 + 6000));
  });

  test("small shapes spend at most layerWorkBudget per layer, whatever the loads (the old search scored ~4000 count vectors)", () => {
    const shapes = [
      makeTopology(16, 20, 1, 1, 4),
      makeTopology(8, 16, 1, 1, 4),
      makeTopology(16, 20, 4, 2, 4),
      makeTopology(64, 80, 1, 1, 8),
      makeTopology(12, 24, 1, 1, 6),
    ];
    for (const t of shapes) {
      const E = t.numExperts;
      const families = [
        lognormalLoads(6, E, 1, 7),
        lognormalLoads(6, E, 1.5, 7),
        zipfLoads(6, E, 1, 7),
        adversarial("ties", 6, E),
        adversarial("hot", 6, E),
      ];
      const ws = new BalancedWorkspace(t);
      const phy = new Int32Array(t.numReplicas);
      const rank = new Int32Array(t.numReplicas);
      const cnt = new Int32Array(E);
      const budget = layerWorkBudget(t);
      let spent = 0;
      for (const loads of families) {
        for (let l = 0; l < loads.layers; l++) {
          const before = ws.work;
          planBalancedLayer(
            {
              loads: loads.data,
              loadOffset: l * E,
              phy2log: phy,
              replicaRank: rank,
              slotOffset: 0,
              logcnt: cnt,
              expertOffset: 0,
            },
            ws,
          );
          const work = ws.work - before;
          spent += work;
          assert.ok(work <= budget, `${E} experts, layer ${l}: ${work} > ${budget}`);
        }
      }
      // The counter is live: these loads do make the policy search.
      assert.ok(spent > 0, `${E} experts: no search work counted`);
    }
  });
});

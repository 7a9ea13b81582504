import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  gpuTransferCounts,
  localityViolation,
  MigrationWorkspace,
  migrateLayer,
  RelabelWorkspace,
  relabelLayer,
  resolveMigrationSettings,
  SMOOTHING,
  smoothMaxGpuLoad,
  solveAssignment,
} from "../../../src/blocks.js";
import {
  createPlacement,
  gpuLoads,
  type LoadMatrix,
  lognormalLoads,
  makeTopology,
  migratePlacement,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  planBalanced,
  planDeepseek,
  planTransfers,
  Random,
  rebalanceExperts,
  type Topology,
  toLoadMatrix,
} from "../../../src/index.js";

/** A random valid cluster shape, loads, and drifted loads (zeros and ties included). */
const instance = fc
  .record({
    nodes: fc.integer({ min: 1, max: 4 }),
    gpusPerNode: fc.integer({ min: 1, max: 4 }),
    slotsPerGpu: fc.integer({ min: 1, max: 5 }),
    layers: fc.integer({ min: 1, max: 3 }),
    // A percentage, not fc.double: that draws mostly tiny values (one expert in most cases).
    expertsPercent: fc.integer({ min: 0, max: 100 }),
    groupChoice: fc.nat(),
    hierarchical: fc.boolean(),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    zeroShare: fc.double({ min: 0, max: 0.5, noNaN: true }),
    drift: fc.constantFrom(0, 0.05, 0.3, 1),
    budgetChoice: fc.integer({ min: 0, max: 5 }),
    minGain: fc.constantFrom(0, 0.002, 0.05),
  })
  .map((r) => {
    const numGpus = r.nodes * r.gpusPerNode;
    const numReplicas = numGpus * r.slotsPerGpu;
    const numExperts = Math.max(1, Math.round((r.expertsPercent * numReplicas) / 100));
    const divisors: number[] = [];
    for (let d = 1; d <= numExperts; d++) if (numExperts % d === 0) divisors.push(d);
    // Half of the shapes are hierarchical whenever some group count allows it.
    const hierarchical = divisors.filter((d) => d % r.nodes === 0);
    const choices = r.hierarchical && hierarchical.length > 0 ? hierarchical : divisors;
    const numGroups = choices[r.groupChoice % choices.length];
    const rng = new Random(r.seed);
    const old = new Float64Array(r.layers * numExperts);
    for (let i = 0; i < old.length; i++) {
      old[i] = rng.next() < r.zeroShare ? 0 : Math.floor(100 * rng.lognormal(1));
    }
    const data = old.map((v) => (rng.next() < r.zeroShare / 4 ? 0 : v * rng.lognormal(r.drift)));
    const topology = makeTopology(numExperts, numReplicas, numGroups, r.nodes, numGpus);
    const budgets = [0, 1, 2, numReplicas >> 2, numReplicas, 0.3];
    return {
      topology,
      oldLoads: { layers: r.layers, experts: numExperts, data: old } as LoadMatrix,
      loads: { layers: r.layers, experts: numExperts, data } as LoadMatrix,
      moveBudget: budgets[r.budgetChoice],
      minGain: r.minGain,
    };
  });

/** Hierarchical shapes whose previous plan's first node became three times as busy. */
const skewed = fc
  .record({
    nodes: fc.integer({ min: 2, max: 4 }),
    groupsPerNode: fc.integer({ min: 1, max: 2 }),
    expertsPerGroup: fc.integer({ min: 1, max: 3 }),
    gpusPerNode: fc.integer({ min: 1, max: 3 }),
    spare: fc.integer({ min: 0, max: 6 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    moveBudget: fc.constantFrom(2, 6, Number.POSITIVE_INFINITY),
  })
  .map((r) => {
    const numGroups = r.nodes * r.groupsPerNode;
    const numExperts = numGroups * r.expertsPerGroup;
    const numGpus = r.nodes * r.gpusPerNode;
    const numReplicas = Math.ceil((numExperts + r.spare) / numGpus) * numGpus;
    const topology = makeTopology(numExperts, numReplicas, numGroups, r.nodes, numGpus);
    const oldLoads = lognormal(2, numExperts, r.seed);
    // The previous plan's first node becomes three times as busy: replicas want to leave it.
    const previous = planDeepseek(oldLoads, topology);
    const data = oldLoads.data.slice();
    const P = numReplicas;
    for (let l = 0; l < 2; l++) {
      const onNode0 = new Set(previous.phy2log.subarray(l * P, l * P + P / r.nodes));
      for (const e of onNode0) data[l * numExperts + e] *= 3;
    }
    return { topology, previous, loads: { ...oldLoads, data }, moveBudget: r.moveBudget };
  });

/** GPUs of layer `l` holding some expert twice. */
function duplicates(p: Placement, t: Topology, l: number): number {
  const { numReplicas: P, slotsPerGpu: S, numGpus: G } = t;
  let n = 0;
  for (let g = 0; g < G; g++) {
    const row = p.phy2log.subarray(l * P + g * S, l * P + (g + 1) * S);
    if (new Set(row).size < S) n++;
  }
  return n;
}

function layerMax(loads: LoadMatrix, p: Placement, numGpus: number, l: number): number {
  const gpu = gpuLoads(loads, p, { numGpus });
  let max = 0;
  for (let g = 0; g < numGpus; g++) max = Math.max(max, gpu[l * numGpus + g]);
  return max;
}

function slotsChanged(a: Placement, b: Placement, l: number): number {
  const P = a.numReplicas;
  let n = 0;
  for (let s = 0; s < P; s++) if (a.phy2log[l * P + s] !== b.phy2log[l * P + s]) n++;
  return n;
}

describe("migratePlacement: properties", () => {
  test("always a valid placement with the locality contract of the topology", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads, moveBudget, minGain }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget, minGain });
        assert.equal(placementViolation(m.placement), null);
        assert.equal(localityViolation(m.placement, topology), null);
        const P = topology.numReplicas;
        for (let l = 0; l < loads.layers; l++) {
          let sum = 0;
          for (let e = 0; e < loads.experts; e++) {
            const c = m.placement.logcnt[l * loads.experts + e];
            assert.ok(c >= 1, `layer ${l} expert ${e} has a replica`);
            sum += c;
          }
          assert.equal(sum, P);
        }
        const ref = rebalanceExperts(
          loads,
          P,
          topology.numGroups,
          topology.numNodes,
          topology.numGpus,
          {
            policy: "deepseek",
            previous,
            moveBudget,
            minGain,
          },
        );
        // log2phy is the exact inverse of phy2log, padded with -1.
        for (let l = 0; l < loads.layers; l++) {
          for (let e = 0; e < loads.experts; e++) {
            const row = ref.log2phy[l][e];
            for (let k = 0; k < row.length; k++) {
              if (k < ref.logcnt[l][e]) assert.equal(ref.phy2log[l][row[k]], e);
              else assert.equal(row[k], -1);
            }
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  test("a zero budget returns the previous placement unchanged", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget: 0 });
        assert.deepEqual(m.placement.phy2log, previous.phy2log);
        assert.deepEqual(m.placement.logcnt, previous.logcnt);
        assert.equal(m.metrics.slotsChanged, 0);
        assert.equal(m.transfers.count, 0);
      }),
      { numRuns: 100 },
    );
  });

  test("slots changed per layer stay within the budget", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads, moveBudget, minGain }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget, minGain });
        const budget = resolveMigrationSettings({ moveBudget }, topology.numReplicas).moveBudget;
        for (let l = 0; l < loads.layers; l++) {
          const changed = slotsChanged(previous, m.placement, l);
          assert.ok(changed <= budget, `layer ${l}: ${changed} slots changed, budget ${budget}`);
          assert.equal(m.metrics.slotsChangedPerLayer[l], changed);
        }
      }),
      { numRuns: 150 },
    );
  });

  test("a changed layer's smooth max GPU load drops by minGain and its max never rises", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads, moveBudget, minGain }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget, minGain });
        const { numGpus: G, numReplicas: P } = topology;
        const E = loads.experts;
        const smooth = (p: Placement, l: number) =>
          smoothMaxGpuLoad(loads.data, l * E, p.phy2log, l * P, p.logcnt, l * E, G, P);
        for (let l = 0; l < loads.layers; l++) {
          if (slotsChanged(previous, m.placement, l) === 0) continue;
          const before = smooth(previous, l);
          const after = smooth(m.placement, l);
          assert.ok(after <= before * (1 - minGain) * (1 + 1e-9), `layer ${l}: gain >= ${minGain}`);
          assert.ok(Math.abs(m.layers[l].smoothAfter - after) <= 1e-9 * before);
          const maxBefore = layerMax(loads, previous, G, l);
          const maxAfter = layerMax(loads, m.placement, G, l);
          assert.ok(maxAfter <= maxBefore * (1 + 1e-9), `layer ${l}: ${maxAfter} <= ${maxBefore}`);
          assert.ok(Math.abs(m.metrics.maxLoadAfter[l] - maxAfter) <= 1e-9 * maxBefore);
        }
      }),
      { numRuns: 150 },
    );
  });

  test("the transfer plan covers exactly the changed slots, each from the closest holder", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads, moveBudget }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget });
        const { numReplicas: P, slotsPerGpu: S, slotsPerNode: Sn } = topology;
        const plan = m.transfers;
        let total = 0;
        for (let l = 0; l < loads.layers; l++) total += slotsChanged(previous, m.placement, l);
        assert.equal(plan.count, total);
        assert.equal(plan.local + plan.intraNode + plan.interNode, plan.count);
        for (let i = 0; i < plan.count; i++) {
          const l = plan.layer[i];
          const { expert, source, destination } = {
            expert: plan.expert[i],
            source: plan.source[i],
            destination: plan.destination[i],
          };
          assert.equal(m.placement.phy2log[l * P + destination], expert);
          assert.notEqual(previous.phy2log[l * P + destination], expert);
          assert.equal(previous.phy2log[l * P + source], expert);
          const kindOf = (s: number) =>
            Math.floor(s / S) === Math.floor(destination / S)
              ? 0
              : Math.floor(s / Sn) === Math.floor(destination / Sn)
                ? 1
                : 2;
          let bestKind = 2;
          for (let s = 0; s < P; s++) {
            if (previous.phy2log[l * P + s] === expert) bestKind = Math.min(bestKind, kindOf(s));
          }
          assert.equal(plan.kind[i], kindOf(source));
          assert.equal(plan.kind[i], bestKind, "no closer source exists");
        }
      }),
      { numRuns: 100 },
    );
  });

  test("strict hierarchy under node skew: every replica of a group stays on its node", () => {
    fc.assert(
      fc.property(skewed, ({ topology, previous, loads, moveBudget }) => {
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget });
        assert.equal(placementViolation(m.placement), null);
        assert.equal(localityViolation(m.placement, topology), null);
      }),
      { numRuns: 100 },
    );
  });

  test("repairs never add a second replica of an expert to a GPU", () => {
    fc.assert(
      fc.property(fc.oneof(instance, skewed), (input) => {
        const { topology, loads, moveBudget } = input;
        const previous =
          "previous" in input ? input.previous : planDeepseek(input.oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, { moveBudget });
        for (let l = 0; l < loads.layers; l++) {
          if (m.layers[l].outcome !== "repaired") continue;
          assert.ok(
            duplicates(m.placement, topology, l) <= duplicates(previous, topology, l),
            `layer ${l}`,
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  test("relaxed hierarchy: keeps one replica of every expert on its group's node", () => {
    let offNode = 0;
    fc.assert(
      fc.property(skewed, ({ topology, previous, loads, moveBudget }) => {
        const fresh = planDeepseek(loads, topology);
        const m = migratePlacement(loads, previous, fresh, topology, {
          moveBudget,
          relaxedHierarchy: true,
        });
        assert.equal(placementViolation(m.placement), null);
        assert.equal(localityViolation(m.placement, topology, true), null);
        if (localityViolation(m.placement, topology) !== null) offNode++;
      }),
      { numRuns: 100 },
    );
    assert.ok(offNode > 10, `replicas left their group's node in ${offNode} of 100 runs`);
  });
});

/** Loads drifted by a lognormal factor per expert. */
function drifted(loads: LoadMatrix, sigma: number, rng: Random): LoadMatrix {
  const data = loads.data.map((v) => v * rng.lognormal(sigma));
  return { layers: loads.layers, experts: loads.experts, data };
}

function lognormal(layers: number, experts: number, seed: number): LoadMatrix {
  const rng = new Random(seed);
  const data = new Float64Array(layers * experts);
  for (let i = 0; i < data.length; i++) data[i] = 1000 * rng.lognormal(1);
  return { layers, experts, data };
}

describe("migratePlacement: drift (regression)", () => {
  test("5% drift on a global shape: few slots change, balance stays near a fresh plan", () => {
    const t = makeTopology(64, 80, 1, 2, 16);
    const rng = new Random(11);
    let loads = lognormal(8, 64, 3);
    let previous = planDeepseek(loads, t);
    let changed = 0;
    let ratio = 0;
    const steps = 4;
    for (let step = 0; step < steps; step++) {
      loads = drifted(loads, 0.05, rng);
      const fresh = planDeepseek(loads, t);
      const m = migratePlacement(loads, previous, fresh, t);
      changed += m.metrics.slotsChangedShare / steps;
      ratio += m.metrics.afterOverFresh / steps;
      assert.ok(m.metrics.freshSlotsChanged > 4 * m.metrics.slotsChanged);
      previous = m.placement;
    }
    assert.ok(changed < 0.15, `${(100 * changed).toFixed(1)}% of slots changed`);
    assert.ok(ratio < 1.01, `max GPU load ${ratio} of a fresh plan's`);
  });

  test("hierarchical: a drifted heavy node is fixed by trading groups between nodes", () => {
    // 4 groups of 4 experts on 2 nodes; groups 0 and 1 (node 0) become much heavier.
    const t = makeTopology(16, 24, 4, 2, 4);
    const even = new Float64Array(16).fill(100);
    const previous = planDeepseek({ layers: 1, experts: 16, data: even }, t);
    const onNode0 = new Set(previous.phy2log.subarray(0, 12));
    const heavy = even.map((v, e) => (onNode0.has(e) ? 3 * v : v));
    const loads = { layers: 1, experts: 16, data: heavy };
    const fresh = planDeepseek(loads, t);
    const m = migratePlacement(loads, previous, fresh, t, { moveBudget: 24 });
    assert.equal(m.layers[0].outcome, "regrouped");
    assert.ok(m.metrics.maxLoadAfter[0] < m.metrics.maxLoadBefore[0] * 0.9);
    assert.equal(localityViolation(m.placement, t), null);
    assert.ok(m.metrics.slotsChanged < 24);
  });

  test("an unlimited budget reaches at least the fresh plan's balance (relabelled if need be)", () => {
    const t = makeTopology(32, 48, 1, 2, 8);
    const previous = planDeepseek(lognormal(4, 32, 5), t);
    const loads = lognormal(4, 32, 6);
    const fresh = planDeepseek(loads, t);
    const m = migratePlacement(loads, previous, fresh, t, {
      moveBudget: Number.POSITIVE_INFINITY,
      minGain: 0,
      tolerance: 0,
    });
    for (let l = 0; l < 4; l++) {
      assert.ok(m.metrics.maxLoadAfter[l] <= m.metrics.maxLoadFresh[l] * (1 + 1e-9));
    }
  });
});

describe("minimum gain gate", () => {
  test("a large minGain keeps every layer; none lets the same drift change layers", () => {
    const t = makeTopology(64, 80, 1, 2, 16);
    const previous = planDeepseek(lognormal(8, 64, 3), t);
    const loads = drifted(lognormal(8, 64, 3), 0.05, new Random(4));
    const fresh = planDeepseek(loads, t);
    const gated = migratePlacement(loads, previous, fresh, t, { minGain: 0.5 });
    assert.deepEqual(gated.placement.phy2log, previous.phy2log);
    assert.equal(gated.metrics.layersGated, 8);
    const open = migratePlacement(loads, previous, fresh, t, { minGain: 0 });
    assert.equal(open.metrics.layersRepaired, 8);
    // Between the two: a layer changes exactly when its gain reaches the gate.
    const gains = open.layers.map((r) => 1 - r.smoothAfter / r.smoothBefore).sort((a, b) => a - b);
    const minGain = (gains[3] + gains[4]) / 2;
    const half = migratePlacement(loads, previous, fresh, t, { minGain });
    assert.equal(half.metrics.layersRepaired, 4);
    assert.equal(half.metrics.layersGated, 4);
  });
});

describe("migrateLayer", () => {
  test("the documented example: two slots change and the max GPU load drops from 40 to 35", () => {
    const t = makeTopology(4, 6, 1, 1, 3);
    const loads = toLoadMatrix([[10, 40, 20, 30]]);
    const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4);
    const out = createPlacement(1, 6, 4);
    const settings = resolveMigrationSettings({ moveBudget: 2 }, 6);
    const r = migrateLayer(loads, previous, null, 0, out, settings, new MigrationWorkspace(t));
    assert.deepEqual(
      { outcome: r.outcome, slotsChanged: r.slotsChanged, maxBefore: r.maxBefore },
      { outcome: "repaired", slotsChanged: 2, maxBefore: 40 },
    );
    assert.equal(r.maxAfter, 35);
    assert.equal(placementViolation(out), null);
  });

  test("a layer already within tolerance of the fresh plan is kept as it is", () => {
    const t = makeTopology(8, 12, 1, 1, 4);
    const loads = lognormal(1, 8, 9);
    const plan = planDeepseek(loads, t);
    const out = createPlacement(1, 12, 8);
    const settings = resolveMigrationSettings({}, 12);
    const r = migrateLayer(loads, plan, plan, 0, out, settings, new MigrationWorkspace(t));
    assert.equal(r.outcome, "kept");
    assert.deepEqual(out.phy2log, plan.phy2log);
  });

  test("writing into the previous placement itself (in place) works", () => {
    const t = makeTopology(4, 6, 1, 1, 3);
    const loads = toLoadMatrix([[10, 40, 20, 30]]);
    const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4);
    const settings = resolveMigrationSettings({ moveBudget: 2 }, 6);
    migrateLayer(loads, previous, null, 0, previous, settings, new MigrationWorkspace(t));
    assert.equal(placementViolation(previous), null);
    assert.equal(layerMax(loads, previous, 3, 0), 35);
  });
});

describe("planning for future traffic", () => {
  test("smoothMaxGpuLoad: the documented example, the largest load without smoothing", () => {
    const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
    const loads = new Float64Array([8, 4, 3]); // GPU loads 8 and 7, mean 7.5
    const tau = SMOOTHING * 7.5;
    const value = smoothMaxGpuLoad(loads, 0, p.phy2log, 0, p.logcnt, 0, 2, 4);
    assert.ok(Math.abs(value - (8 + tau * Math.log(1 + Math.exp(-1 / tau)))) < 1e-12);
    assert.equal(smoothMaxGpuLoad(loads, 0, p.phy2log, 0, p.logcnt, 0, 2, 4, 0), 8);
    // Equal GPU loads: the largest plus tau * log(numGpus), the most it can exceed the largest.
    const flat = placementFromPhy2log([[0, 1, 2, 3]], 4);
    const even = new Float64Array([5, 5, 5, 5]);
    const smooth = smoothMaxGpuLoad(even, 0, flat.phy2log, 0, flat.logcnt, 0, 4, 4);
    assert.ok(Math.abs(smooth - (5 + SMOOTHING * 5 * Math.log(4))) < 1e-12);
  });

  test("replica counts move to the fresh plan's: a hot expert gets back its second replica", () => {
    // Expert 0 grew from 20 to 90: the fresh plan splits it in two and gives expert 1 one slot.
    const t = makeTopology(6, 8, 1, 1, 4);
    const previous = placementFromPhy2log([[0, 1, 1, 2, 3, 4, 5, 2]], 6);
    const loads = toLoadMatrix([[90, 40, 60, 30, 30, 20]]);
    const fresh = planBalanced(loads, t);
    assert.equal(fresh.logcnt[0], 2);
    const m = migratePlacement(loads, previous, fresh, t);
    assert.deepEqual([...m.placement.logcnt], [...fresh.logcnt]);
    assert.ok(m.metrics.slotsChanged < m.metrics.freshSlotsChanged);
    assert.equal(placementViolation(m.placement), null);
  });

  test("chained relaxed rebalances always leave a replica of each expert on its home node", () => {
    const chain = fc.record({
      nodes: fc.integer({ min: 2, max: 3 }),
      groupsPerNode: fc.integer({ min: 1, max: 2 }),
      expertsPerGroup: fc.integer({ min: 2, max: 4 }),
      gpusPerNode: fc.integer({ min: 1, max: 3 }),
      spare: fc.integer({ min: 1, max: 8 }),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    });
    fc.assert(
      fc.property(chain, (r) => {
        const numGroups = r.nodes * r.groupsPerNode;
        const numExperts = numGroups * r.expertsPerGroup;
        const numGpus = r.nodes * r.gpusPerNode;
        const numReplicas = Math.ceil((numExperts + r.spare) / numGpus) * numGpus;
        const t = makeTopology(numExperts, numReplicas, numGroups, r.nodes, numGpus);
        const rng = new Random(r.seed);
        let loads = lognormal(2, numExperts, r.seed);
        const relaxed = { relaxedHierarchy: true };
        let previous = planBalanced(loads, t, relaxed);
        for (let step = 0; step < 4; step++) {
          loads = drifted(loads, 0.5, rng);
          const m = migratePlacement(loads, previous, planBalanced(loads, t, relaxed), t, relaxed);
          assert.equal(placementViolation(m.placement), null);
          assert.equal(localityViolation(m.placement, t, true), null);
          previous = m.placement;
        }
      }),
      { numRuns: 60 },
    );
  });

  test("one workspace reused across layers and calls gives what fresh workspaces give", () => {
    const shapes = fc.record({
      gpus: fc.constantFrom(4, 8),
      slotsPerGpu: fc.integer({ min: 2, max: 5 }),
      spare: fc.integer({ min: 1, max: 8 }),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    });
    fc.assert(
      fc.property(shapes, ({ gpus, slotsPerGpu, spare, seed }) => {
        const P = gpus * slotsPerGpu;
        const E = Math.max(1, P - spare);
        const t = makeTopology(E, P, 1, 1, gpus);
        const old = lognormal(4, E, seed);
        const loads = drifted(old, 0.5, new Random(seed + 1));
        const previous = planDeepseek(old, t);
        const fresh = planBalanced(loads, t);
        const settings = resolveMigrationSettings({}, P);
        const shared = new MigrationWorkspace(t);
        const a = createPlacement(4, P, E);
        const b = createPlacement(4, P, E);
        for (let l = 0; l < 4; l++) {
          migrateLayer(loads, previous, fresh, l, a, settings, shared);
          migrateLayer(loads, previous, fresh, l, b, settings, new MigrationWorkspace(t));
        }
        assert.deepEqual(a.phy2log, b.phy2log);
      }),
      { numRuns: 60 },
    );
  });
});

describe("previous placement checks", () => {
  test("rebalanceExperts reports the bad previous placement before planning", () => {
    assert.throws(
      () => rebalanceExperts([[1, 2, 3, 4]], 6, 2, 2, 2, { previous: [[0, 1, 0, 2, 3]] }),
      /previous\[0\]\.length \(5\) must equal numReplicas \(6\)/,
    );
  });
});

describe("rebalanceExperts with options.previous", () => {
  test("nested and typed previous placements give the same result, with transfers and metrics", () => {
    const loads = lognormal(3, 16, 21);
    const t = makeTopology(16, 24, 4, 2, 8);
    const previous = planDeepseek(lognormal(3, 16, 22), t);
    const nested = Array.from({ length: 3 }, (_, l) =>
      Array.from(previous.phy2log.subarray(l * 24, (l + 1) * 24)),
    );
    const a = rebalanceExperts(loads, 24, 4, 2, 8, { policy: "deepseek", previous });
    const b = rebalanceExperts(loads, 24, 4, 2, 8, { policy: "deepseek", previous: nested });
    assert.deepEqual(a.phy2log, b.phy2log);
    assert.ok(a.transfers && a.migration);
    assert.equal(a.transfers.count, a.migration.slotsChanged);
    assert.ok(a.migration.afterOverFresh <= a.migration.beforeOverFresh);
  });

  test("the relabelled fresh plan's churn is measured on request, never above the raw churn", () => {
    const t = makeTopology(16, 24, 4, 2, 8);
    const loads = lognormal(3, 16, 23);
    const previous = planDeepseek(lognormal(3, 16, 24), t);
    const fresh = planDeepseek(loads, t);
    assert.equal(
      migratePlacement(loads, previous, fresh, t).metrics.freshRelabelledSlotsChanged,
      null,
    );
    const m = migratePlacement(loads, previous, fresh, t, { compareRelabelled: true }).metrics;
    assert.ok(m.freshRelabelledSlotsChanged !== null);
    assert.ok(m.freshRelabelledSlotsChanged <= m.freshSlotsChanged);
  });

  test("without previous the result has no transfers", () => {
    const r = rebalanceExperts([[1, 2, 3, 4]], 6, 1, 1, 2, { policy: "deepseek" });
    assert.equal(r.transfers, undefined);
    assert.equal(r.migration, undefined);
  });
});

function permutedLayer(row: Int32Array, t: Topology, rng: Random): Int32Array {
  const { numNodes: N, gpusPerNode: gpn, slotsPerGpu: S } = t;
  const shuffle = (n: number) => {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  };
  const nodes = shuffle(N);
  const out = new Int32Array(row.length);
  for (let n = 0; n < N; n++) {
    const gpus = shuffle(gpn);
    for (let i = 0; i < gpn; i++) {
      const slots = shuffle(S);
      for (let j = 0; j < S; j++) {
        out[(nodes[n] * gpn + gpus[i]) * S + slots[j]] = row[(n * gpn + i) * S + j];
      }
    }
  }
  return out;
}

describe("assignment and relabelling", () => {
  test("solveAssignment finds the minimum of every permutation (brute force)", () => {
    const permutations = (n: number): number[][] =>
      n === 0
        ? [[]]
        : permutations(n - 1).flatMap((p) =>
            Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
          );
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 6 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.array(fc.integer({ min: -5, max: 20 }), { minLength: n * n, maxLength: n * n }),
            ),
          ),
        ([n, cost]) => {
          const a = new Int32Array(n);
          const total = solveAssignment(new Float64Array(cost), n, a);
          let best = Number.POSITIVE_INFINITY;
          for (const p of permutations(n)) {
            best = Math.min(
              best,
              p.reduce((s, c, r) => s + cost[r * n + c], 0),
            );
          }
          assert.equal(total, best);
          assert.deepEqual(
            [...a].sort((x, y) => x - y),
            Array.from({ length: n }, (_, i) => i),
          );
          assert.equal(
            [...a].reduce((s, c, r) => s + cost[r * n + c], 0),
            best,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test("a fresh plan that only permutes nodes, GPUs and slots relabels to zero changes", () => {
    fc.assert(
      fc.property(instance, fc.integer({ min: 0, max: 1000 }), ({ topology, loads }, seed) => {
        const plan = planDeepseek(loads, topology);
        const rng = new Random(seed);
        const P = topology.numReplicas;
        const ws = new RelabelWorkspace(topology);
        for (let l = 0; l < loads.layers; l++) {
          const row = plan.phy2log.subarray(l * P, (l + 1) * P);
          const shuffled = permutedLayer(row, topology, rng);
          const out = new Int32Array(P);
          assert.equal(relabelLayer(row, 0, shuffled, 0, topology, out, 0, ws), 0);
          assert.deepEqual(out, new Int32Array(row));
        }
      }),
      { numRuns: 100 },
    );
  });

  test("relabelling keeps every GPU's expert set and the locality contract", () => {
    fc.assert(
      fc.property(instance, ({ topology, oldLoads, loads }) => {
        const previous = planDeepseek(oldLoads, topology);
        const fresh = planDeepseek(loads, topology);
        const { numReplicas: P, slotsPerGpu: S, numGpus: G } = topology;
        const out = createPlacement(loads.layers, P, loads.experts);
        const ws = new RelabelWorkspace(topology);
        for (let l = 0; l < loads.layers; l++) {
          const changed = relabelLayer(
            previous.phy2log,
            l * P,
            fresh.phy2log,
            l * P,
            topology,
            out.phy2log,
            l * P,
            ws,
          );
          let differ = 0;
          for (let s = 0; s < P; s++)
            if (out.phy2log[l * P + s] !== previous.phy2log[l * P + s]) differ++;
          assert.equal(changed, differ);
          const sets = (row: Int32Array) =>
            Array.from({ length: G }, (_, g) =>
              [...row.subarray(l * P + g * S, l * P + (g + 1) * S)].sort((x, y) => x - y).join(","),
            )
              .sort()
              .join("|");
          assert.equal(sets(out.phy2log), sets(fresh.phy2log));
        }
        const relabelled = placementFromPhy2log(
          Array.from({ length: loads.layers }, (_, l) => out.phy2log.subarray(l * P, (l + 1) * P)),
          loads.experts,
        );
        assert.equal(localityViolation(relabelled, topology), null);
      }),
      { numRuns: 100 },
    );
  });
});

test("planTransfers: same GPU first, then same node, then another node", () => {
  const t = makeTopology(3, 4, 1, 2, 2);
  const plan = planTransfers(
    placementFromPhy2log([[0, 1, 2, 0]], 3),
    placementFromPhy2log([[0, 0, 2, 1]], 3),
    t,
  );
  assert.deepEqual([...plan.source], [0, 1]);
  assert.deepEqual([...plan.destination], [1, 3]);
  assert.deepEqual([plan.local, plan.intraNode, plan.interNode], [1, 0, 1]);
});

test("planTransfers spreads reads over the GPUs that hold the expert, not only over slots", () => {
  // Expert 0 sits twice on GPU 0 and once on GPU 1; GPU 2 needs two copies of it. Reading both
  // from GPU 0 (its two slots) would make GPU 0 the busiest sender.
  const t = makeTopology(4, 8, 1, 1, 4);
  const plan = planTransfers(
    placementFromPhy2log([[0, 0, 0, 1, 2, 3, 2, 3]], 4),
    placementFromPhy2log([[0, 0, 0, 1, 0, 0, 2, 3]], 4),
    t,
  );
  assert.deepEqual([...plan.destination], [4, 5]);
  assert.deepEqual([...plan.source], [0, 2]);
  assert.deepEqual([...gpuTransferCounts(plan, t).outgoing.subarray(4, 8)], [1, 1, 0, 0]);
});

test("gpuTransferCounts: every transfer counted once per side, by kind and GPU", () => {
  const t = makeTopology(3, 4, 1, 2, 2);
  const plan = planTransfers(
    placementFromPhy2log([[0, 1, 2, 0]], 3),
    placementFromPhy2log([[0, 0, 2, 1]], 3),
    t,
  );
  const c = gpuTransferCounts(plan, t);
  // slot 1 (GPU 0) <- slot 0 (GPU 0), local; slot 3 (GPU 1) <- slot 1 (GPU 0), another node.
  assert.deepEqual([...c.incoming], [1, 0, 0, 0, 0, 1]);
  assert.deepEqual([...c.outgoing], [1, 0, 0, 0, 1, 0]);
  // On random migrations the per-GPU counts add up to the plan's counts by kind.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), (seed) => {
      const loads = lognormalLoads(3, 16, 1, seed);
      const topology = makeTopology(16, 24, 4, 2, 4);
      const previous = rebalanceExperts(loads, 24, 4, 2, 4).placement;
      const drifted = { ...loads, data: loads.data.map((v, i) => v * (1 + ((i * 7919) % 13) / 6)) };
      const next = rebalanceExperts(drifted, 24, 4, 2, 4, { previous, moveBudget: 12 }).placement;
      const p = planTransfers(previous, next, topology);
      const g = gpuTransferCounts(p, topology);
      const byKind = (a: Int32Array, k: number) =>
        a.subarray(k * 4, (k + 1) * 4).reduce((x, y) => x + y, 0);
      assert.deepEqual(
        [0, 1, 2].map((k) => byKind(g.incoming, k)),
        [p.local, p.intraNode, p.interNode],
      );
      assert.deepEqual(
        [0, 1, 2].map((k) => byKind(g.outgoing, k)),
        [p.local, p.intraNode, p.interNode],
      );
    }),
    { numRuns: 50 },
  );
});

// Tests of core/policies/deepseek.ts: the reference's hierarchical policy one layer at a time
// (both node paths), the shape it solves, the per-layer planner and the policy entry.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { planLayers } from "../../../src/core/blocks/layers.js";
import { toLoadMatrix } from "../../../src/core/model/matrix.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import {
  DeepseekWorkspace,
  deepseekLayerPlanner,
  deepseekPolicy,
  type HierarchyShape,
  planDeepseek,
  planHierarchicalLayer,
  referenceShape,
} from "../../../src/core/policies/deepseek.js";
import { Random } from "../../../src/index.js";
import { plainHierarchicalLayer, plainRebalance } from "../../helpers/plain-reference.js";

/** Hierarchical shapes: up to 7 groups (the group sums run four at a time, then the rest). */
const shapes = fc
  .record({
    nodes: fc.integer({ min: 1, max: 3 }),
    groupsPerNode: fc.integer({ min: 1, max: 3 }),
    groupSize: fc.integer({ min: 1, max: 4 }),
    gpusPerNode: fc.integer({ min: 1, max: 3 }),
    extraPerGpu: fc.integer({ min: 0, max: 3 }),
    ties: fc.boolean(),
    seed: fc.integer({ min: 0, max: 2 ** 30 }),
  })
  .map((r) => {
    const numGroups = r.nodes * r.groupsPerNode;
    const E = numGroups * r.groupSize;
    const G = r.nodes * r.gpusPerNode;
    // Slots: at least one per expert of a node, rounded up to whole GPUs, plus extras.
    const perGpu = Math.ceil(E / r.nodes / r.gpusPerNode) + r.extraPerGpu;
    const shape: HierarchyShape = {
      numExperts: E,
      numReplicas: G * perGpu,
      numGroups,
      numNodes: r.nodes,
      numGpus: G,
    };
    const rng = new Random(r.seed);
    const weights = Array.from({ length: E }, () =>
      r.ties ? rng.int(3) : Math.round(100 * rng.lognormal(1)) / 7,
    );
    return { shape, weights };
  });

describe("planHierarchicalLayer", () => {
  test("the documented example", () => {
    const shape = { numExperts: 4, numReplicas: 6, numGroups: 1, numNodes: 1, numGpus: 2 };
    const ws = new DeepseekWorkspace(shape);
    const phy = new Int32Array(6);
    const rank = new Int32Array(6);
    const cnt = new Int32Array(4);
    planHierarchicalLayer(new Float64Array([10, 40, 20, 30]), 0, shape, phy, rank, 0, cnt, 0, ws);
    assert.deepEqual([...phy], [1, 1, 0, 2, 3, 3]);
    assert.deepEqual([...cnt], [1, 2, 1, 2]);
  });

  test("property: equals the plain reference (slots, ranks, counts) at offsets, both node paths", () => {
    let oneSlotPerGpu = 0;
    fc.assert(
      fc.property(shapes, ({ shape, weights }) => {
        const { numExperts: E, numReplicas: P } = shape;
        if (P === shape.numGpus) oneSlotPerGpu++;
        const ws = new DeepseekWorkspace(shape);
        // The layer sits second in buffers of two layers.
        const loads = new Float64Array(2 * E).fill(1e6);
        loads.set(weights, E);
        const phy = new Int32Array(2 * P).fill(-1);
        const rank = new Int32Array(2 * P).fill(-1);
        const cnt = new Int32Array(2 * E).fill(-1);
        planHierarchicalLayer(loads, E, shape, phy, rank, P, cnt, E, ws);
        const wantRanks: number[] = [];
        const want = plainHierarchicalLayer(
          weights,
          P,
          shape.numGroups,
          shape.numNodes,
          shape.numGpus,
          wantRanks,
        );
        assert.deepEqual([...phy.subarray(P)], want);
        assert.deepEqual([...rank.subarray(P)], wantRanks);
        const counts = new Array<number>(E).fill(0);
        for (const e of want) counts[e]++;
        assert.deepEqual([...cnt.subarray(E)], counts);
        assert.ok(
          phy.subarray(0, P).every((x) => x === -1),
          "the first layer is untouched",
        );
      }),
      { seed: 15, numRuns: 300 },
    );
    assert.ok(oneSlotPerGpu > 10, `only ${oneSlotPerGpu} shapes with one slot per GPU`);
  });
});

describe("referenceShape, deepseekLayerPlanner, planDeepseek and the policy", () => {
  test("hierarchical topologies are solved as they are; others as one group on one node", () => {
    assert.deepEqual(referenceShape(makeTopology(8, 12, 4, 2, 4)), {
      numExperts: 8,
      numReplicas: 12,
      numGroups: 4,
      numNodes: 2,
      numGpus: 4,
    });
    assert.deepEqual(referenceShape(makeTopology(256, 288, 8, 18, 144)), {
      numExperts: 256,
      numReplicas: 288,
      numGroups: 1,
      numNodes: 1,
      numGpus: 144,
    });
  });

  test("the global path ignores groups: 3 groups on 2 nodes plan as 1 group on 1 node", () => {
    const loads = toLoadMatrix([[5, 1, 4, 2, 9, 3]]);
    const global = planDeepseek(loads, makeTopology(6, 8, 3, 2, 4));
    const flat = planDeepseek(loads, makeTopology(6, 8, 1, 1, 4));
    assert.deepEqual(global, flat);
  });

  test("planners of different shapes interleaved give the plans each gives alone", () => {
    const a = makeTopology(8, 12, 4, 2, 4);
    const b = makeTopology(8, 12, 2, 2, 4);
    const loads = toLoadMatrix([
      [9, 1, 4, 4, 2, 7, 3, 3],
      [1, 1, 1, 8, 8, 2, 5, 6],
    ]);
    const rows = [
      [9, 1, 4, 4, 2, 7, 3, 3],
      [1, 1, 1, 8, 8, 2, 5, 6],
    ];
    // Planned by the plain reference, so that a shared workspace gone wrong cannot agree with
    // itself; the smaller shape plans first.
    const wantB = plainRebalance(rows, 12, 2, 2, 4).flat();
    const wantA = plainRebalance(rows, 12, 4, 2, 4).flat();
    assert.deepEqual([...planDeepseek(loads, b).phy2log], wantB);
    assert.deepEqual([...planDeepseek(loads, a).phy2log], wantA);
    const aloneA = planDeepseek(loads, a);
    const aloneB = planDeepseek(loads, b);
    // The smaller shape first: a workspace kept for it must not serve the larger one.
    const pb = deepseekLayerPlanner(b);
    const pa = deepseekLayerPlanner(a);
    const pb2 = deepseekLayerPlanner(b);
    assert.deepEqual(planLayers(loads, a, pa), aloneA);
    assert.deepEqual(planLayers(loads, b, pb), aloneB);
    assert.deepEqual(planLayers(loads, b, pb2), aloneB);
    assert.deepEqual(planLayers(loads, a, pa), aloneA);
    assert.notDeepEqual(aloneA.phy2log, aloneB.phy2log);
  });

  test("the policy: name, no options, plan and layer planner equal planDeepseek", () => {
    const t = makeTopology(4, 6, 1, 1, 2);
    const loads = toLoadMatrix([
      [10, 40, 20, 30],
      [0, 0, 5, 5],
    ]);
    assert.equal(deepseekPolicy.name, "deepseek");
    assert.deepEqual(deepseekPolicy.options, []);
    assert.deepEqual(deepseekPolicy.plan(loads, t, {}), planDeepseek(loads, t));
    const planner = deepseekPolicy.layerPlanner?.(t, {});
    assert.ok(planner);
    assert.deepEqual(planLayers(loads, t, planner), planDeepseek(loads, t));
    assert.deepEqual([...planDeepseek(loads, t).phy2log.subarray(0, 6)], [1, 1, 0, 2, 3, 3]);
  });
});

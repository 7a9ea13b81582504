import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  contiguousGpuLoads,
  duplicateGpuCount,
  evaluatePlacement,
  gpuLoads,
  lowerBounds,
  nodeLoads,
  requirePlacementFits,
  summarizeBalance,
} from "../../../src/core/evaluation/metrics.js";
import { EplbInputError, placementFromPhy2log, toLoadMatrix } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";
import { evalCase } from "../../helpers/small-cases.js";

const loads = toLoadMatrix(evalCase.loads);
const placement = placementFromPhy2log(evalCase.phy2log, 4);
const close = (a: ArrayLike<number>, b: number[]) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) < 1e-12, `[${i}] ${a[i]} vs ${b[i]}`);
};

describe("gpuLoads and contiguousGpuLoads on the hand-computed case", () => {
  test("a replica carries its expert's load over its count, summed per GPU", () => {
    assert.deepEqual(Array.from(gpuLoads(loads, placement, { numGpus: 3 })), [6, 6, 4, 0, 3, 3]);
  });

  test("an empty slot (-1) serves nothing", () => {
    const p = placementFromPhy2log([[0, -1, 1, 2]], 3, "phy2log", true);
    assert.deepEqual(Array.from(gpuLoads(toLoadMatrix([[4, 2, 6]]), p, { numGpus: 2 })), [4, 8]);
  });

  test("without EPLB GPU g serves experts floor(g E / G) .. floor((g + 1) E / G) - 1", () => {
    assert.deepEqual(Array.from(contiguousGpuLoads(loads, 3)), [8, 4, 4, 0, 0, 6]);
    assert.deepEqual(Array.from(contiguousGpuLoads(toLoadMatrix([[1, 2, 3, 4, 5]]), 2)), [3, 12]);
  });
});

describe("nodeLoads", () => {
  test("sums each node's consecutive GPUs, layer by layer", () => {
    const gpu = Float64Array.from([1, 2, 3, 4, 10, 20, 30, 40]);
    assert.deepEqual(Array.from(nodeLoads(gpu, 2, 4, 2)), [3, 7, 30, 70]);
    assert.deepEqual(Array.from(nodeLoads(gpu, 2, 4, 1)), [10, 100]);
  });
});

describe("lowerBounds", () => {
  test("max(total / GPUs, the smallest achievable largest replica), per layer", () => {
    // Layer 0: 16 / 3 beats the water-filled 4; layer 1: 6 / 3 = 2 beats 3 / 2.
    close(lowerBounds(loads, { numReplicas: 6, numGpus: 3 }), [16 / 3, 2]);
    // One hot expert and few spare slots: the replica term binds.
    close(lowerBounds(toLoadMatrix([[90, 1, 1, 1]]), { numReplicas: 6, numGpus: 6 }), [30]);
    close(lowerBounds(toLoadMatrix([[0, 0]]), { numReplicas: 2, numGpus: 2 }), [0]);
  });
});

describe("duplicateGpuCount", () => {
  test("counts (layer, GPU) pairs holding an expert twice, not the copies; empty slots never match", () => {
    const p = placementFromPhy2log(
      [
        [0, 0, 0, 1, 1, 2],
        [0, 1, 2, -1, -1, 0],
      ],
      3,
      "phy2log",
      true,
    );
    // 2 GPUs of 3 slots: layer 0 GPU 0 holds 0 three times, GPU 1 holds 1 twice; layer 1 none.
    assert.equal(duplicateGpuCount(p, { numGpus: 2 }), 2);
    assert.equal(duplicateGpuCount(p, { numGpus: 3 }), 1); // only [0, 0]
    assert.equal(duplicateGpuCount(p, { numGpus: 6 }), 0);
    assert.equal(duplicateGpuCount(placement, { numGpus: 3 }), 0);
  });
});

describe("summarizeBalance", () => {
  test("mean over max per layer, their mean and worst; an all-zero layer counts 1", () => {
    const s = summarizeBalance(Float64Array.from([6, 6, 4, 0, 3, 3, 0, 0, 0]), 3, 3);
    close(s.balancednessPerLayer, [16 / 18, 2 / 3, 1]);
    close([s.balancedness], [(16 / 18 + 2 / 3 + 1) / 3]);
    close([s.worstBalancedness], [2 / 3]);
    assert.deepEqual(s.maxGpuLoad, [6, 3, 0]);
    close(s.meanGpuLoad, [16 / 3, 2, 0]);
  });
});

describe("requirePlacementFits", () => {
  test("accepts a placement of the loads' shape on GPUs that divide its slots", () => {
    requirePlacementFits(loads, placement, { numGpus: 3 });
    requirePlacementFits(loads, placement, { numGpus: 6, numNodes: 2 });
  });

  test("refuses each mismatch, naming the parameter, the value and the rule", () => {
    assertRefused(
      () => requirePlacementFits(toLoadMatrix([[1, 2, 3, 4]]), placement, { numGpus: 3 }),
      EplbInputError,
      "placement.layers (2) must equal the number of layers in the loads (1)",
      "placement.layers",
    );
    assertRefused(
      () =>
        requirePlacementFits(
          toLoadMatrix([
            [1, 2, 3],
            [1, 2, 3],
          ]),
          placement,
          { numGpus: 3 },
        ),
      EplbInputError,
      "placement.numExperts (4) must equal the number of experts in the loads (3)",
      "placement.numExperts",
    );
    assertRefused(
      () => requirePlacementFits(loads, placement, { numGpus: 4 }),
      EplbInputError,
      "numGpus (4) must divide the placement's slots per layer (6)",
      "numGpus",
    );
    assertRefused(
      () => requirePlacementFits(loads, placement, { numGpus: 3, numNodes: 2 }),
      EplbInputError,
      "numNodes (2) must divide numGpus (3)",
      "numNodes",
    );
  });
});

describe("evaluatePlacement", () => {
  test("the hand-computed case: balance, distance to the bound, duplicates and nodes", () => {
    const m = evaluatePlacement(loads, placement, { numGpus: 3 });
    assert.deepEqual(m.maxGpuLoad, [6, 3]);
    close(m.lowerBound, [16 / 3, 2]);
    close(m.maxOverLowerBoundPerLayer, [6 / (16 / 3), 1.5]);
    close([m.maxOverLowerBound, m.worstMaxOverLowerBound], [(1.125 + 1.5) / 2, 1.5]);
    assert.equal(m.duplicateGpus, 0);
    assert.equal(m.nodeBalancedness, 1); // one node
    assert.equal(m.offNodeShare, 0); // numGroups not given
  });

  test("nodes and groups given: node balance from the GPUs' sums and the off-node share", () => {
    // 2 nodes of 1 GPU x 2 slots, 2 groups of 1 expert; expert 0 has a replica on node 1.
    const m = evaluatePlacement(toLoadMatrix([[8, 4]]), placementFromPhy2log([[0, 0, 0, 1]], 2), {
      numGpus: 2,
      numNodes: 2,
      numGroups: 2,
    });
    // GPU loads 16/3 and 8/3 + 4 = 20/3: node balance (6 / (20/3)) = 0.9.
    close([m.nodeBalancedness], [0.9]);
    close([m.offNodeShare], [2 / 9]);
    assert.equal(m.duplicateGpus, 1);
  });

  test("an all-zero layer is balanced and at its bound", () => {
    const m = evaluatePlacement(toLoadMatrix([[0, 0]]), placementFromPhy2log([[0, 1]], 2), {
      numGpus: 2,
    });
    assert.deepEqual([m.balancedness, m.maxOverLowerBound], [1, 1]);
  });
});

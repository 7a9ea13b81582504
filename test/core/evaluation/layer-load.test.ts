import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { layerMaxGpuLoad, layerView } from "../../../src/blocks.js";
import { evaluatePlacement, planBalanced, Random } from "../../../src/index.js";
import { instance } from "../../helpers/instances.js";

describe("layerMaxGpuLoad (the one max-GPU-load kernel)", () => {
  test("equals evaluatePlacement's max GPU load to the last bit, layer by layer", () => {
    fc.assert(
      fc.property(instance(), ({ loads, topology }) => {
        const p = planBalanced(loads, topology);
        const m = evaluatePlacement(loads, p, { numGpus: topology.numGpus });
        const v = layerView(loads, p, 0);
        for (let l = 0; l < loads.layers; l++) {
          layerView(loads, p, l, v);
          assert.equal(layerMaxGpuLoad(v, topology), m.maxGpuLoad[l]);
        }
      }),
      { numRuns: 60 },
    );
  });

  test("the documented example", () => {
    const layer = {
      loads: new Float64Array([8, 2, 4]),
      loadOffset: 0,
      phy2log: new Int32Array([0, 1, 0, 2]),
      slotOffset: 0,
      logcnt: new Int32Array([2, 1, 1]),
      expertOffset: 0,
    };
    assert.equal(layerMaxGpuLoad(layer, { numGpus: 2, slotsPerGpu: 2 }), 8);
  });
});

describe("layerMaxGpuLoad: offsets and edge cases", () => {
  test("reads the layer at its offsets in flat multi-layer arrays, not layer 0", () => {
    // Two layers of 3 experts on 2 GPUs x 2 slots; only layer 1 is asked for.
    const layer = {
      loads: new Float64Array([100, 100, 100, 6, 3, 9]),
      loadOffset: 3,
      phy2log: new Int32Array([0, 0, 1, 2, 2, 1, 0, 1]),
      slotOffset: 4,
      logcnt: new Int32Array([2, 1, 1, 1, 2, 1]),
      expertOffset: 3,
    };
    // Layer 1: GPU 0 holds experts 2, 1 (9 + 3 / 2), GPU 1 holds 0, 1 (6 + 3 / 2).
    assert.equal(layerMaxGpuLoad(layer, { numGpus: 2, slotsPerGpu: 2 }), 10.5);
  });

  test("an all-zero layer's max is 0", () => {
    const layer = {
      loads: new Float64Array(3),
      loadOffset: 0,
      phy2log: new Int32Array([0, 1, 2, 0]),
      slotOffset: 0,
      logcnt: new Int32Array([2, 1, 1]),
      expertOffset: 0,
    };
    assert.equal(layerMaxGpuLoad(layer, { numGpus: 2, slotsPerGpu: 2 }), 0);
  });

  test("equals a plain per-GPU sum over random slots, counts and offsets", () => {
    const rng = new Random(11);
    for (let run = 0; run < 200; run++) {
      const G = 1 + rng.int(6);
      const S = 1 + rng.int(4);
      const E = 1 + rng.int(G * S);
      const loadOffset = rng.int(5);
      const slotOffset = rng.int(5);
      const expertOffset = rng.int(5);
      const loads = new Float64Array(loadOffset + E);
      for (let e = 0; e < E; e++) loads[loadOffset + e] = rng.int(4) === 0 ? 0 : rng.lognormal(1);
      const phy2log = new Int32Array(slotOffset + G * S);
      const logcnt = new Int32Array(expertOffset + E);
      for (let s = 0; s < G * S; s++) {
        const e = s < E ? s : rng.int(E);
        phy2log[slotOffset + s] = e;
        logcnt[expertOffset + e]++;
      }
      let plain = 0;
      for (let g = 0; g < G; g++) {
        let sum = 0;
        for (let j = 0; j < S; j++) {
          const e = phy2log[slotOffset + g * S + j];
          sum += loads[loadOffset + e] / logcnt[expertOffset + e];
        }
        plain = Math.max(plain, sum);
      }
      const layer = { loads, loadOffset, phy2log, slotOffset, logcnt, expertOffset };
      assert.equal(layerMaxGpuLoad(layer, { numGpus: G, slotsPerGpu: S }), plain);
    }
  });
});

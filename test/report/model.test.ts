import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { lognormalLoads } from "../../src/core/blocks/random.js";
import {
  contiguousGpuLoads,
  duplicateGpuCount,
  evaluatePlacement,
  lowerBounds,
  summarizeBalance,
} from "../../src/core/evaluation/metrics.js";
import { EplbInputError } from "../../src/core/model/errors.js";
import { toLoadMatrix } from "../../src/core/model/matrix.js";
import { placementFromPhy2log } from "../../src/core/model/placement.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import type { LocalityMetrics } from "../../src/core/routing/summary.js";
import { buildReportModel, migrationView, pickDetailLayers } from "../../src/report/model.js";
import { assertRefused } from "../helpers/refused.js";

/** Two layers of 12 experts in 4 groups, planned on 2 nodes of 4 GPUs (2 slots each). */
const example = lognormalLoads(2, 12, 1, 7);

describe("buildReportModel", () => {
  it("reports before as contiguous experts, one slot each, and after as evaluatePlacement", () => {
    const { placement } = rebalanceExperts(example, 16, 4, 2, 8);
    const m = buildReportModel({
      loads: example,
      placement,
      numGpus: 8,
      numNodes: 2,
      numGroups: 4,
    });
    const before = summarizeBalance(contiguousGpuLoads(example, 8), 2, 8);
    assert.deepEqual(m.before.balancednessPerLayer, before.balancednessPerLayer);
    assert.deepEqual(m.after, evaluatePlacement(example, placement, { numGpus: 8, numNodes: 2 }));
    assert.equal(m.slotsPerGpu, 2);
    assert.equal(m.gpusPerNode, 4);
  });

  it("counts duplicates per layer consistently with the model-wide count", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 1e6 }),
        (layers, experts, gpus, extraPerGpu, seed) => {
          const slotsPerGpu = Math.ceil(experts / gpus) + extraPerGpu;
          const P = slotsPerGpu * gpus;
          const rows: number[][] = [];
          for (let l = 0; l < layers; l++) {
            const row = Array.from({ length: P }, (_, s) =>
              s < experts ? s : (s * seed + l) % experts,
            );
            rows.push(row);
          }
          const placement = placementFromPhy2log(rows, experts);
          const loads = lognormalLoads(layers, experts, 1, seed);
          const m = buildReportModel({ loads, placement, numGpus: gpus });
          const sum = m.duplicatesPerLayer.reduce((a, b) => a + b, 0);
          assert.equal(sum, duplicateGpuCount(placement, { numGpus: gpus }));
          assert.equal(sum, m.after.duplicateGpus);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("rejects a placement that does not match the loads or the cluster", () => {
    const placement = placementFromPhy2log([[0, 1, 2, 0]], 3);
    const loads = toLoadMatrix([[1, 2, 3]]);
    assert.throws(
      () => buildReportModel({ loads: toLoadMatrix([[1, 2]]), placement, numGpus: 2 }),
      /placement\.numExperts \(3\) must equal the number of experts in the loads \(2\)/,
    );
    assert.throws(
      () =>
        buildReportModel({
          loads: toLoadMatrix([
            [1, 2, 3],
            [1, 2, 3],
          ]),
          placement,
          numGpus: 2,
        }),
      /placement\.layers \(1\)/,
    );
    assert.throws(() => buildReportModel({ loads, placement, numGpus: 3 }), EplbInputError);
    assert.throws(
      () => buildReportModel({ loads, placement, numGpus: 4, numNodes: 3 }),
      /numNodes \(3\) must divide numGpus \(4\)/,
    );
    assert.throws(
      () => buildReportModel({ loads, placement, numGpus: 2, detailLayers: [1] }),
      /detailLayers \(1\) must be a layer index in 0\.\.0/,
    );
  });

  it("picks the worst layer after, the worst before and a median one, without repeats", () => {
    assert.deepEqual(pickDetailLayers([0.5, 0.4, 0.7], [0.95, 0.9, 0.99]), [
      { layer: 1, reason: "worst after EPLB" },
      { layer: 0, reason: "median after EPLB" },
    ]);
    assert.deepEqual(pickDetailLayers([1], [1]), [{ layer: 0, reason: "worst after EPLB" }]);
  });

  it("keeps every GPU load: each layer's GPU loads, before and after, sum to its total", () => {
    const { placement } = rebalanceExperts(example, 16, 4, 2, 8);
    const m = buildReportModel({ loads: example, placement, numGpus: 8, numNodes: 2 });
    for (let l = 0; l < example.layers; l++) {
      let total = 0;
      for (let e = 0; e < example.experts; e++) total += example.data[l * 12 + e];
      let before = 0;
      let after = 0;
      for (let g = 0; g < 8; g++) {
        before += m.beforeGpuLoads[l * 8 + g];
        after += m.afterGpuLoads[l * 8 + g];
      }
      assert.ok(Math.abs(before - total) < 1e-9 * total, `layer ${l} before`);
      assert.ok(Math.abs(after - total) < 1e-9 * total, `layer ${l} after`);
    }
  });

  it("states before as max GPU load over the plan's lower bound: per layer, mean and worst", () => {
    const { placement } = rebalanceExperts(example, 16, 4, 2, 8);
    const m = buildReportModel({ loads: example, placement, numGpus: 8, numNodes: 2 });
    const bounds = lowerBounds(example, { numReplicas: 16, numGpus: 8 });
    const ratios = m.before.maxOverLowerBoundPerLayer;
    assert.equal(ratios.length, 2);
    for (let l = 0; l < 2; l++) {
      assert.ok(Math.abs(ratios[l] - m.before.maxGpuLoad[l] / bounds[l]) < 1e-12);
      assert.ok(ratios[l] >= 1 - 1e-12, "nothing beats the lower bound");
    }
    assert.equal(m.before.worstMaxOverLowerBound, Math.max(...ratios));
    assert.ok(Math.abs(m.before.maxOverLowerBound - (ratios[0] + ratios[1]) / 2) < 1e-12);
  });

  it("counts, per layer, the GPUs that hold an expert twice (as a plain recount does)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 1e6 }),
        (layers, gpus, slotsPerGpu, seed) => {
          const experts = 3;
          const P = gpus * slotsPerGpu;
          fc.pre(P >= experts);
          const rows = Array.from({ length: layers }, (_, l) =>
            Array.from({ length: P }, (_, s) => (s < experts ? s : (s * 7 + seed + l) % experts)),
          );
          // Shuffle each row so the required experts are not always first.
          for (const row of rows) row.sort((a, b) => ((a * 31 + seed) % 5) - ((b * 31 + seed) % 5));
          const placement = placementFromPhy2log(rows, experts);
          const loads = lognormalLoads(layers, experts, 1, seed);
          const m = buildReportModel({ loads, placement, numGpus: gpus });
          const want = rows.map((row) => {
            let n = 0;
            for (let g = 0; g < gpus; g++) {
              const held = row.slice(g * slotsPerGpu, (g + 1) * slotsPerGpu);
              if (new Set(held).size < held.length) n++;
            }
            return n;
          });
          assert.deepEqual(m.duplicatesPerLayer, want);
        },
      ),
      { seed: 15, numRuns: 150 },
    );
  });

  it("shows the chosen detail layers in the given order, once each", () => {
    const loads = lognormalLoads(4, 8, 1, 3);
    const { placement } = rebalanceExperts(loads, 8, 1, 1, 4);
    const m = buildReportModel({ loads, placement, numGpus: 4, detailLayers: [3, 1, 3] });
    assert.deepEqual(m.detailLayers, [
      { layer: 3, reason: "chosen" },
      { layer: 1, reason: "chosen" },
    ]);
    // None given (or an empty list): picked from the balance.
    const picked = buildReportModel({ loads, placement, numGpus: 4, detailLayers: [] });
    assert.deepEqual(
      picked.detailLayers,
      pickDetailLayers(picked.before.balancednessPerLayer, picked.after.balancednessPerLayer),
    );
  });

  it("refuses groups that do not divide the experts only on the hierarchical path", () => {
    const loads = lognormalLoads(1, 12, 1, 5);
    const { placement } = rebalanceExperts(loads, 16, 1, 1, 4);
    assertRefused(
      () => buildReportModel({ loads, placement, numGpus: 4, numNodes: 1, numGroups: 5 }),
      EplbInputError,
      "numGroups (5) must divide the number of experts (12) when numGroups % numNodes == 0 (hierarchical)",
      "numGroups",
    );
    // 5 groups on 2 nodes: the global path, where groups are not used.
    const m = buildReportModel({ loads, placement, numGpus: 4, numNodes: 2, numGroups: 5 });
    assert.equal(m.numGroups, 5);
    assertRefused(
      () => buildReportModel({ loads, placement, numGpus: 2.5 }),
      EplbInputError,
      /^numGpus \(2\.5\)/,
      "numGpus",
    );
  });

  it("has a migration view only with a previous placement, and passes dispatch figures through", () => {
    const loads = lognormalLoads(2, 8, 1, 9);
    const previous = rebalanceExperts(loads, 8, 1, 1, 4).placement;
    const { placement } = rebalanceExperts(lognormalLoads(2, 8, 1, 10), 8, 1, 1, 4, { previous });
    const plain = buildReportModel({ loads, placement, numGpus: 4 });
    assert.equal(plain.migration, undefined);
    assert.equal("locality" in plain, false);
    const m = buildReportModel({ loads, placement, numGpus: 4, previous });
    assert.deepEqual(m.migration, migrationView(loads, previous, placement, 4, 1, 1));
    const locality = { remoteNodesPerToken: 0.5 } as unknown as LocalityMetrics;
    assert.equal(buildReportModel({ loads, placement, numGpus: 4, locality }).locality, locality);
  });
});

describe("pickDetailLayers", () => {
  it("picks at most three distinct layers in range, the worst after first", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 12, maxLength: 12 }),
        (after, pool) => {
          const before = after.map((_, i) => pool[i]);
          const picked = pickDetailLayers(before, after);
          assert.ok(picked.length >= 1 && picked.length <= 3);
          const layers = picked.map((d) => d.layer);
          assert.equal(new Set(layers).size, layers.length);
          for (const l of layers) assert.ok(l >= 0 && l < after.length);
          // The first index of the minimum: ties go to the lower layer.
          assert.equal(layers[0], after.indexOf(Math.min(...after)));
          assert.equal(picked[0].reason, "worst after EPLB");
          const worstBefore = before.indexOf(Math.min(...before));
          assert.ok(layers.includes(worstBefore));
        },
      ),
      { seed: 15 },
    );
  });

  it("gives nothing for no layers", () => {
    assert.deepEqual(pickDetailLayers([], []), []);
  });
});

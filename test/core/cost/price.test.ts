import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { makeCostModel } from "../../../src/core/cost/model.js";
import {
  contiguousLayerMoeUs,
  distinctSlotMask,
  layerMoeUs,
  layerTransfers,
  rebalanceMs,
  stepMoeMs,
} from "../../../src/core/cost/price.js";
import {
  makeTopology,
  placementFromPhy2log,
  planTransfers,
  simulate,
  synthesizeTrace,
} from "../../../src/index.js";
import { flip, flipConfig, msModel } from "../../helpers/priced-flip.js";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

describe("pricing a step", () => {
  test("a layer's time is its busiest GPU's tokens plus its distinct active experts", () => {
    const m = makeCostModel({
      expertBytes: 1,
      intraGbps: 1,
      interGbps: 1,
      tokenUs: 2,
      expertLoadUs: 10,
    });
    const t = makeTopology(3, 4, 1, 1, 2);
    // GPU 0 holds experts 0 and 1 (load 8 + 4/2), GPU 1 experts 2 and 1 (0 + 4/2).
    const p = placementFromPhy2log([[0, 1, 2, 1]], 3);
    // GPU 0: 2 * 10 + 10 * 2 = 40; GPU 1: 2 * 2 + 10 * 1 (expert 2 has no load) = 14.
    assert.equal(layerMoeUs(new Float64Array([8, 4, 0]), 0, p, 0, t, m), 40);
    // Two replicas of one expert on one GPU stream its weights once.
    const dup = placementFromPhy2log([[0, 0, 1, 2]], 3);
    assert.deepEqual(Array.from(distinctSlotMask(dup, 2)), [1, 0, 1, 1]);
    // GPU 0: 2 * (4 + 4) + 10 * 1 = 26; GPU 1: 2 * (1 + 1) + 10 * 2 = 24.
    assert.equal(layerMoeUs(new Float64Array([8, 1, 1]), 0, dup, 0, t, m), 26);
    // Without EPLB: GPU 0 experts 0, 1 (2 * 6 + 10 * 1 active = 22), GPU 1 experts 2, 3
    // (2 * 2 + 10 * 2 active = 24): the decode term makes the lighter GPU the slower one.
    assert.equal(contiguousLayerMoeUs(new Float64Array([6, 0, 1, 1]), 0, 4, 2, m), 24);
    // A step is its layers in sequence, in ms.
    const two = placementFromPhy2log(
      [
        [0, 1],
        [1, 0],
      ],
      2,
    );
    const t2 = makeTopology(2, 2, 1, 1, 2);
    close(stepMoeMs(new Float64Array([3, 1, 5, 2]), 0, 2, two, t2, msModel), 3 + 5);
    close(stepMoeMs(new Float64Array([3, 1, 5, 2]), 0, 2, null, t2, msModel), 3 + 5);
  });

  test("a rebalance costs its transfers' schedule; nothing moved costs nothing", () => {
    const t = makeTopology(2, 4, 1, 1, 2);
    const a = placementFromPhy2log([[0, 0, 0, 1]], 2);
    assert.equal(rebalanceMs(a, a, t, msModel), 0);
    // Slot 2 (GPU 1) gets expert 1 from slot 3 of the same GPU: a local copy, free.
    assert.equal(rebalanceMs(a, placementFromPhy2log([[0, 0, 1, 1]], 2), t, msModel), 0);
    // Slot 0 (GPU 0) gets expert 1 from GPU 1: one intra-node copy, 1 ms.
    close(rebalanceMs(a, placementFromPhy2log([[1, 0, 0, 1]], 2), t, msModel), 1);
    const plan = planTransfers(a, placementFromPhy2log([[1, 0, 0, 1]], 2), t);
    assert.equal(layerTransfers(plan, 0).count, 1);
  });
});

/** 24 slots on 8 GPUs in 2 nodes, 4 groups of 4 experts: a small hierarchical cluster. */
const small = { numReplicas: 24, numGroups: 4, numNodes: 2, numGpus: 8, interval: 20, window: 20 };

describe("simulate with a cost model: hand-computed", () => {
  test("1 layer, 2 GPUs, 6 steps: MoE ms per step, stall per rebalance, total", () => {
    const r = simulate(flip, { ...flipConfig, cost: msModel, costGate: false });
    const eplb = r.eplb.cost;
    assert.ok(eplb);
    // Steps 2-3: planned for [3, 1] (counts [3, 1]), judged on [1, 3]: the GPU holding expert 1
    // and a third of expert 0 serves 3 + 1/3 tokens: 10/3 ms. Steps 4-5: planned for [1, 3]
    // (counts [1, 3]): GPU loads [2, 2], 2 ms.
    assert.deepEqual(Array.from(eplb.stepMs), [10 / 3, 10 / 3, 2, 2]);
    close(eplb.moeMsPerStep, (10 / 3 + 2) / 2);
    // The second rebalance turns two slots of expert 0 into expert 1: one lands on the GPU that
    // holds expert 1 (a local copy), the other crosses to the other GPU of the node (1 ms).
    assert.deepEqual(Array.from(eplb.transferMs), [0, 1]);
    close(eplb.transferMsPerRebalance, 1);
    close(eplb.totalMs, 4 * eplb.moeMsPerStep + 1 * eplb.transferMsPerRebalance);
    close(eplb.totalMs, 20 / 3 + 4 + 1);
    // No balancing: GPU 1 holds expert 1, 3 ms every judged step, never a transfer.
    const none = r.baselines.none?.cost;
    assert.ok(none);
    assert.deepEqual(Array.from(none.stepMs), [3, 3, 3, 3]);
    assert.equal(none.transferMsPerRebalance, 0);
    assert.equal(none.totalMs, 12);
    // The oracle plans [1, 3] both times: 2 ms a step, and its second plan moves nothing.
    assert.equal(r.baselines.oracle?.cost?.totalMs, 8);
    assert.equal(r.baselines.oracle?.cost?.transferMsPerRebalance, 0);
    assert.equal(r.baselines.deepseek?.cost?.totalMs, eplb.totalMs);
  });

  test("the static baseline: eplb's first placement kept, never rebalanced", () => {
    const r = simulate(flip, { ...flipConfig, cost: msModel, staticBaseline: true });
    const kept = r.baselines.static;
    assert.ok(kept?.cost);
    // Planned for [3, 1] at step 2 and kept: 10/3 ms on every judged step, nothing moved.
    assert.deepEqual(Array.from(kept.cost.stepMs), [10 / 3, 10 / 3, 10 / 3, 10 / 3]);
    assert.deepEqual(Array.from(kept.movedSlots), [0, 0]);
    assert.equal(kept.cost.transferMsPerRebalance, 0);
    assert.equal("static" in simulate(flip, flipConfig).baselines, false);
  });

  test("the fused judging loop prices each step as stepMoeMs does (decode term included)", () => {
    const t = synthesizeTrace({ steps: 60, layers: 3, experts: 16, seed: 5, tokens: 64 });
    const model = makeCostModel({
      expertBytes: 44e6,
      intraGbps: 1600,
      interGbps: 400,
      tokenUs: 0.3,
      expertLoadUs: 7,
    });
    const r = simulate(t, { ...small, cost: model });
    const topology = makeTopology(16, 24, 4, 2, 8);
    const n = 3 * 16;
    const stepMs = r.eplb.cost?.stepMs ?? new Float64Array(0);
    // The last chunk (steps 40..59) is judged under the final placement.
    for (let step = 40; step < 60; step++) {
      const loads = Float64Array.from(t.data.subarray(step * n, (step + 1) * n));
      close(stepMs[step - 20], stepMoeMs(loads, 0, 3, r.finalPlacement, topology, model));
      close(
        r.baselines.none?.cost?.stepMs[step - 20] ?? -1,
        stepMoeMs(loads, 0, 3, null, topology, model),
      );
    }
  });

  test("without a cost model nothing is priced and nothing else changes", () => {
    const t = synthesizeTrace({ steps: 80, layers: 2, experts: 16, seed: 3 });
    const plain = simulate(t, small);
    const priced = simulate(t, { ...small, cost: msModel, costGate: false });
    for (const s of [plain.eplb, ...Object.values(plain.baselines)]) {
      assert.equal(s && "cost" in s, false);
    }
    assert.deepEqual(priced.eplb.balancedness, plain.eplb.balancedness);
    assert.deepEqual(priced.eplb.movedSlots, plain.eplb.movedSlots);
    assert.equal(priced.eplb.cost?.skippedRebalances, undefined);
  });
});

/**
 * src/core/traces/judge.ts: the simulator's innermost loops judge a step exactly as the
 * placement metrics and the cost model do, only faster (precomputed cells, one pass for both).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { makeCostModel } from "../../../src/core/cost/model.js";
import {
  contiguousLayerMoeUs,
  distinctSlotMask,
  layerMoeUs,
} from "../../../src/core/cost/price.js";
import {
  contiguousGpuLoads,
  evaluatePlacement,
  summarizeBalance,
} from "../../../src/core/evaluation/metrics.js";
import { contiguousStepBalancedness, judgeStep, stepUs } from "../../../src/core/traces/judge.js";
import { slotSharesOf } from "../../../src/core/traces/simulate.js";
import {
  lognormalLoads,
  makeTopology,
  placementFromPhy2log,
  rebalanceExperts,
} from "../../../src/index.js";

const L = 3;
const E = 16;
const P = 24;
const G = 8;

/** Per slot, the index of its expert's load in the step: `layer * E + expert`. */
function cellsOf(phy2log: Int32Array): Int32Array {
  return Int32Array.from(phy2log, (e, s) => Math.floor(s / P) * E + e);
}

/** Loads to judge, in a buffer holding other steps before them (the step starts at `offset`). */
function stepInBuffer(
  values: Float64Array,
  before: number,
): { buffer: Float64Array; offset: number } {
  const buffer = new Float64Array(before + values.length + 5).fill(1e9);
  buffer.set(values, before);
  return { buffer, offset: before };
}

const plan = rebalanceExperts(lognormalLoads(L, E, 1.2, 3), P, 4, 2, G);
const placement = plan.placement;
const cells = cellsOf(placement.phy2log);
const shares = slotSharesOf(placement);
// Judged on other loads than those it was planned on, as the simulator does.
const judged = lognormalLoads(L, E, 1.2, 11);

/** A cost model of these compute prices (transfers play no part in judging a step). */
function prices(tokenUs: number, expertLoadUs: number) {
  return makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs, expertLoadUs });
}
const model = prices(0.05, 3);

describe("judgeStep", () => {
  test("its balancedness is evaluatePlacement's on the same loads", () => {
    const { buffer, offset } = stepInBuffer(Float64Array.from(judged.data), 2 * L * E);
    const got = judgeStep(buffer, offset, cells, shares, L, P, G, null, null);
    const want = evaluatePlacement(judged, placement, { numGpus: G, numNodes: 2 }).balancedness;
    assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
    assert.ok(got < 1 && got > 0.5, `${got}`);
  });

  test("with a cost model it prices the step as layerMoeUs summed over layers", () => {
    const data = Float64Array.from(judged.data);
    data[5] = 0; // an expert without load activates nothing
    const distinct = distinctSlotMask(placement, P / G);
    const b = judgeStep(data, 0, cells, shares, L, P, G, distinct, model);
    const topology = makeTopology(E, P, 4, 2, G);
    let want = 0;
    for (let l = 0; l < L; l++) want += layerMoeUs(data, l * E, placement, l, topology, model);
    assert.ok(Math.abs(stepUs[0] - want) < 1e-9 * want, `${stepUs[0]} vs ${want}`);
    // Pricing does not change the judgement.
    assert.equal(b, judgeStep(data, 0, cells, shares, L, P, G, null, null));
  });

  test("an all-zero layer counts as balanced; judging only leaves stepUs at 0", () => {
    // Layer 0 has no load; layer 1 puts 4 on GPU 0 (experts 0, 1) and 0 on GPU 1: 0.5.
    const p = placementFromPhy2log(
      [
        [0, 1, 2, 3],
        [0, 1, 2, 3],
      ],
      4,
    );
    const c = Int32Array.from(p.phy2log, (e, s) => Math.floor(s / 4) * 4 + e);
    const loads = new Float64Array([0, 0, 0, 0, 3, 1, 0, 0]);
    stepUs[0] = 42;
    assert.equal(judgeStep(loads, 0, c, slotSharesOf(p), 2, 4, 2, null, null), 0.75);
    assert.equal(stepUs[0], 0);
  });
});

test("an expert without load in the step is not streamed: it adds no expertLoadUs", () => {
  const model = prices(2, 10);
  // One layer, experts 0 1 on GPU 0 and 2 3 on GPU 1; only expert 0 has load.
  const loads = new Float64Array([1, 0, 0, 0]);
  const p = placementFromPhy2log([[0, 1, 2, 3]], 4);
  judgeStep(loads, 0, p.phy2log, slotSharesOf(p), 1, 4, 2, distinctSlotMask(p, 2), model);
  assert.equal(stepUs[0], 12); // GPU 0: 2 * 1 + 10 * 1 expert; GPU 1: nothing
  contiguousStepBalancedness(loads, 0, 1, 4, 2, model);
  assert.equal(stepUs[0], 12);
});

describe("contiguousStepBalancedness (no EPLB)", () => {
  test("is the balancedness of experts in order on their GPUs, also when E is not a multiple of G", () => {
    for (const gpus of [G, 5]) {
      const { buffer, offset } = stepInBuffer(Float64Array.from(judged.data), 7);
      const got = contiguousStepBalancedness(buffer, offset, L, E, gpus, null);
      const want = summarizeBalance(contiguousGpuLoads(judged, gpus), L, gpus).balancedness;
      assert.ok(Math.abs(got - want) < 1e-12, `${gpus} GPUs: ${got} vs ${want}`);
    }
  });

  test("with a cost model it prices the step as contiguousLayerMoeUs summed over layers", () => {
    const data = Float64Array.from(judged.data);
    data.fill(0, 0, 4); // GPU 0 of layer 0 activates no expert
    contiguousStepBalancedness(data, 0, L, E, G, model);
    let want = 0;
    for (let l = 0; l < L; l++) want += contiguousLayerMoeUs(data, l * E, E, G, model);
    assert.ok(Math.abs(stepUs[0] - want) < 1e-9 * want, `${stepUs[0]} vs ${want}`);
  });
});

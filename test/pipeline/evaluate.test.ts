import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { placementFromPhy2log, toLoadMatrix } from "../../src/index.js";
import { EVAL_DEFINITIONS, evaluateForEngines, loadsSummary } from "../../src/pipeline/evaluate.js";
import { evalCase } from "../helpers/small-cases.js";

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

// The hand-computed case (see test/helpers/small-cases.ts).
const { loads: loadsArr, phy2log: p2l } = evalCase;

describe("eplb eval figures on a hand-computed case", () => {
  const r = evaluateForEngines(toLoadMatrix(loadsArr), placementFromPhy2log(p2l, 4), 3, 3);

  test("each engine's definition", () => {
    close(r.engines.vllm.balancedness, (16 / 3 + 2) / (6 + 3));
    close(
      r.engines.sglang.balancedness,
      ((16 / 3 + 1e-5) / (6 + 1e-5) + (2 + 1e-5) / (3 + 1e-5)) / 2,
    );
    close(r.engines.trtllm.imbalance, (0.125 + 0.5) / 2);
    close(r.engines.trtllm.worstImbalance, 0.5);
    close(r.engines.vllmAscend.peakOverAverage, (1.125 + 1.5) / 2);
    close(r.engines.vllmAscend.worstPeakOverAverage, 1.5);
    close(r.metrics.balancedness, (8 / 9 + 2 / 3) / 2);
  });

  test("without EPLB on the same GPUs", () => {
    close(r.withoutEplb.balancedness, (16 / 3 / 8 + 2 / 6) / 2);
    close(r.withoutEplb.engines.vllm.balancedness, (16 / 3 + 2) / (8 + 6));
  });

  test("per-node load: one GPU per node here, shares of the total over all layers", () => {
    assert.deepEqual(r.nodeLoads, [
      [6, 6, 4],
      [0, 3, 3],
    ]);
    close(r.nodeShare[0], 6 / 22);
    close(r.nodeShare[1], 9 / 22);
    close(r.nodeShare[2], 7 / 22);
  });

  test("lower bound and duplicates", () => {
    // Layer 0: the mean 16/3 beats the best largest replica load (4, with 8 split in two).
    // Layer 1: the mean 2 beats 1.5 (both loaded experts split in two). Max/bound 1.125, 1.5.
    assert.deepEqual(
      r.metrics.lowerBound.map((x) => +x.toFixed(9)),
      [+(16 / 3).toFixed(9), 2],
    );
    close(r.metrics.maxOverLowerBound, (1.125 + 1.5) / 2);
    close(r.metrics.worstMaxOverLowerBound, 1.5);
    assert.equal(r.metrics.duplicateGpus, 0);
  });
});

describe("evaluateForEngines: inputs it refuses, figures per pass", () => {
  test("a placement of other experts than the loads: EplbInputError naming the --experts fix", () => {
    assert.throws(
      () =>
        evaluateForEngines(
          toLoadMatrix([
            [8, 4, 2, 2, 1],
            [0, 0, 3, 3, 1],
          ]),
          placementFromPhy2log(p2l, 4),
          3,
        ),
      (e: unknown) =>
        e instanceof EplbInputError &&
        /placement\.numExperts/.test(e.message) &&
        /pass --experts/.test(e.message),
    );
  });

  test("slots that do not split over the GPUs are refused", () => {
    assert.throws(
      () => evaluateForEngines(toLoadMatrix(loadsArr), placementFromPhy2log(p2l, 4), 4),
      EplbInputError,
    );
  });

  test("per-pass loads give SGLang's per-pass balancedness, averaged over the passes", () => {
    // Two passes whose sum is the hand-computed loads: pass 0 carries layer 0, pass 1 layer 1.
    const data = new Float64Array([8, 4, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3]);
    const passes = { steps: 2, layers: 2, experts: 4, data };
    const r = evaluateForEngines(toLoadMatrix(loadsArr), placementFromPhy2log(p2l, 4), 3, 1, {
      passes,
    });
    const eps = 1e-5;
    // Pass 0: layer 0 GPUs 6, 6, 4; layer 1 all zero (SGLang's epsilon makes it 1).
    const pass0 = ((16 / 3 + eps) / (6 + eps) + 1) / 2;
    // Pass 1: layer 0 all zero; layer 1 GPUs 0, 3, 3.
    const pass1 = (1 + (2 + eps) / (3 + eps)) / 2;
    assert.ok(r.sglangPerPass);
    assert.equal(r.sglangPerPass.passes, 2);
    close(r.sglangPerPass.placement, (pass0 + pass1) / 2);
    assert.equal(r.sglangPerPass.recorded, undefined);
    assert.equal(r.definitions, EVAL_DEFINITIONS);
  });

  test("without passes there is no per-pass figure", () => {
    const r = evaluateForEngines(toLoadMatrix(loadsArr), placementFromPhy2log(p2l, 4), 3);
    assert.equal(r.sglangPerPass, undefined);
    assert.equal(r.nodes, 1);
    assert.deepEqual(r.nodeShare, [1]);
  });
});

describe("loadsSummary", () => {
  test("says what the loads were read from, with the passes when there are some", () => {
    const loads = toLoadMatrix(loadsArr);
    const source = { loads, files: 2, kinds: ["SGLang per_pass dump"], warnings: [] };
    assert.deepEqual(loadsSummary(source), {
      description: "2 files summed (SGLang per_pass dump)",
      files: 2,
      kinds: ["SGLang per_pass dump"],
    });
    const passes = { steps: 7, layers: 2, experts: 4, data: new Float64Array(56) };
    assert.equal(loadsSummary({ ...source, passes }).passes, 7);
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  sglangBalance,
  trtllmBalance,
  vllmAscendBalance,
  vllmBalance,
} from "../../../src/blocks.js";
import {
  EplbInputError,
  engineBalance,
  gpuLoads,
  placementFromPhy2log,
  summarizeBalance,
  toLoadMatrix,
} from "../../../src/index.js";

const close = (a: number, b: number, eps = 1e-12) =>
  assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} != ${b}`);

// Hand-computed case: 2 layers x 3 GPUs.
// layer 0: [9, 3, 0]  mean 4, max 9
// layer 1: [2, 2, 2]  mean 2, max 2
const gpu = new Float64Array([9, 3, 0, 2, 2, 2]);

describe("engine balance definitions on a hand-computed case", () => {
  test("vLLM: sum of per-layer means over sum of per-layer maxes (load-weighted)", () => {
    const b = vllmBalance(gpu, 2, 3);
    close(b.avgTokens, 6);
    close(b.maxTokens, 11);
    close(b.balancedness, 6 / 11);
    // Not the per-layer average (4/9 + 1) / 2 that the reference and SGLang use.
    assert.notEqual(b.balancedness, (4 / 9 + 1) / 2);
  });

  test("SGLang: per layer (avg + 1e-5) / (max + 1e-5), averaged over layers", () => {
    const b = sglangBalance(gpu, 2, 3);
    close(b.perLayer[0], (4 + 1e-5) / (9 + 1e-5));
    close(b.perLayer[1], 1);
    close(b.balancedness, ((4 + 1e-5) / (9 + 1e-5) + 1) / 2);
  });

  test("TensorRT-LLM: imbalance (max - mean) / mean, mean and worst over layers", () => {
    const b = trtllmBalance(gpu, 2, 3);
    assert.deepEqual(b.perLayer, [1.25, 0]);
    close(b.imbalance, 0.625);
    close(b.worstImbalance, 1.25);
  });

  test("vllm-ascend: peak / average per layer, mean and max over layers", () => {
    const b = vllmAscendBalance(gpu, 2, 3);
    assert.deepEqual(b.perLayer, [2.25, 1]);
    close(b.peakOverAverage, 1.625);
    close(b.worstPeakOverAverage, 2.25);
  });

  test("engineBalance bundles the four", () => {
    const all = engineBalance(gpu, 2, 3);
    assert.deepEqual(all.vllm, vllmBalance(gpu, 2, 3));
    assert.deepEqual(all.sglang, sglangBalance(gpu, 2, 3));
    assert.deepEqual(all.trtllm, trtllmBalance(gpu, 2, 3));
    assert.deepEqual(all.vllmAscend, vllmAscendBalance(gpu, 2, 3));
  });

  test("the documented JSDoc example holds", () => {
    const b = engineBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
    close(b.vllm.balancedness, 5 / 7);
    close(b.sglang.balancedness, ((4 + 1e-5) / (6 + 1e-5) + 1) / 2);
    close(b.trtllm.imbalance, 0.25);
    close(b.vllmAscend.peakOverAverage, 1.25);
  });
});

describe("engine balance on empty layers", () => {
  const zeros = new Float64Array(4);
  test("vLLM reports 0 when nothing was routed (its own guard)", () => {
    assert.equal(vllmBalance(zeros, 2, 2).balancedness, 0);
  });
  test("SGLang's epsilon makes an empty layer perfectly balanced", () => {
    assert.equal(sglangBalance(zeros, 2, 2).balancedness, 1);
  });
  test("TensorRT-LLM and vllm-ascend: an empty layer counts as balanced, never NaN", () => {
    const t = trtllmBalance(new Float64Array([0, 0, 3, 1]), 2, 2);
    assert.deepEqual(t.perLayer, [0, 0.5]);
    const a = vllmAscendBalance(new Float64Array([0, 0, 3, 1]), 2, 2);
    assert.deepEqual(a.perLayer, [1, 1.5]);
    assert.ok(Number.isFinite(t.imbalance) && Number.isFinite(a.peakOverAverage));
  });
});

describe("engine balance on real placements", () => {
  test("a placement's GPU loads: all four agree with each other on a perfect layer", () => {
    // Expert 0 (load 8) split over two GPUs, experts 1 and 2 (4 each) one GPU each... 4 GPUs of 4.
    const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
    const loads = toLoadMatrix([[8, 4, 4]]);
    const g = gpuLoads(loads, p, { numGpus: 4 });
    assert.deepEqual(Array.from(g), [4, 4, 4, 4]);
    const b = engineBalance(g, 1, 4);
    assert.equal(b.vllm.balancedness, 1);
    close(b.sglang.balancedness, 1);
    assert.equal(b.trtllm.imbalance, 0);
    assert.equal(b.vllmAscend.peakOverAverage, 1);
  });

  test("properties: ranges and relations between the definitions", () => {
    const matrix = fc
      .record({ layers: fc.integer({ min: 1, max: 5 }), gpus: fc.integer({ min: 1, max: 8 }) })
      .chain(({ layers, gpus }) =>
        fc
          // Token counts: zero or at least 1e-9. Subnormal loads (5e-324) underflow the mean to 0,
          // where the definitions legitimately disagree; no engine reports such loads.
          .array(fc.oneof(fc.constant(0), fc.double({ min: 1e-9, max: 1e6, noNaN: true })), {
            minLength: layers * gpus,
            maxLength: layers * gpus,
          })
          .map((values) => ({ layers, gpus, data: new Float64Array(values) })),
      );
    fc.assert(
      fc.property(matrix, ({ layers, gpus, data }) => {
        const b = engineBalance(data, layers, gpus);
        const ref = summarizeBalance(data, layers, gpus);
        assert.ok(b.vllm.balancedness >= 0 && b.vllm.balancedness <= 1 + 1e-12);
        assert.ok(b.sglang.balancedness > 0 && b.sglang.balancedness <= 1 + 1e-12);
        assert.ok(b.trtllm.imbalance >= 0 && b.trtllm.imbalance <= gpus - 1 + 1e-9);
        for (let l = 0; l < layers; l++) {
          const trt = b.trtllm.perLayer[l];
          const asc = b.vllmAscend.perLayer[l];
          // peak/average is imbalance + 1, and the reciprocal of mean/max where loads exist.
          close(asc, trt + 1, 1e-9);
          if (ref.maxGpuLoad[l] > 0) close(1 / asc, ref.balancednessPerLayer[l], 1e-9);
        }
        // vLLM's ratio of sums lies between the best and worst per-layer ratio.
        const loaded = ref.balancednessPerLayer.filter((_, l) => ref.maxGpuLoad[l] > 0);
        if (loaded.length > 0) {
          assert.ok(b.vllm.balancedness >= Math.min(...loaded) - 1e-9);
          assert.ok(b.vllm.balancedness <= Math.max(...loaded) + 1e-9);
        }
        assert.ok(b.trtllm.worstImbalance >= b.trtllm.imbalance - 1e-12);
        assert.ok(b.vllmAscend.worstPeakOverAverage >= b.vllmAscend.peakOverAverage - 1e-12);
      }),
      { numRuns: 500 },
    );
  });
});

describe("engine balance input checks", () => {
  test("a length that does not match layers x numGpus is an EplbInputError", () => {
    assert.throws(() => engineBalance(new Float64Array(5), 2, 3), EplbInputError);
    assert.throws(() => vllmBalance(new Float64Array(6), 2, 0), /numGpus \(0\) must be an integer/);
  });
});

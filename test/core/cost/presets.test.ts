import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  expertBytesOf,
  expertLoadUsOf,
  HARDWARE_PRESETS,
  hardwarePreset,
  MODEL_PRESETS,
  modelPreset,
  tokenUsOf,
} from "../../../src/core/cost/presets.js";
import { EplbInputError } from "../../../src/core/model/errors.js";

describe("cost presets", () => {
  test("bytes per expert: 3 matrices of hidden x intermediate, plus one float32 scale per 128x128 block for FP8", () => {
    // DeepSeek-V3 / R1 / Kimi K2: 3 * 7168 * 2048 FP8 bytes = 44,040,192; blocks per matrix
    // 56 * 16 = 896, 3 * 896 scales * 4 bytes = 10,752.
    for (const name of ["deepseek-v3", "deepseek-r1", "kimi-k2"]) {
      assert.equal(expertBytesOf(modelPreset(name)), 44_040_192 + 10_752, name);
    }
    // Qwen3-235B-A22B: 3 * 4096 * 1536 BF16 weights * 2 bytes, no scales.
    assert.equal(expertBytesOf(modelPreset("qwen3-235b-a22b")), 37_748_736);
    // Partial blocks at the edges count whole: 3 * ceil(200/128) * ceil(100/128) = 6 scales.
    assert.equal(
      expertBytesOf({ ...modelPreset("deepseek-v3"), hidden: 200, intermediate: 100 }),
      3 * 200 * 100 + 6 * 4,
    );
  });

  test("links: NVLink per direction in Gb/s (half the bidirectional GB/s, times 8), one 400 Gb/s NIC per GPU", () => {
    assert.equal(hardwarePreset("h100").intraGbps, (900 / 2) * 8);
    assert.equal(hardwarePreset("h200").intraGbps, (900 / 2) * 8);
    assert.equal(hardwarePreset("h800").intraGbps, (400 / 2) * 8);
    for (const name of Object.keys(HARDWARE_PRESETS)) {
      assert.equal(hardwarePreset(name).interGbps, 400);
      assert.equal(hardwarePreset(name).gpusPerNode, 8);
    }
  });

  test("tokenUs = 6 * hidden * intermediate FLOPs over the dense peak at the model's precision times the efficiency", () => {
    // DeepSeek-V3 on H800, FP8 dense 1979 TFLOPS at 50%: 88,080,384 / 989.5e12 s = 0.08902 µs.
    assert.ok(
      Math.abs(tokenUsOf(modelPreset("deepseek-v3"), hardwarePreset("h800")) - 0.089015) < 1e-6,
    );
    // Qwen3 BF16 on H100 (989 TFLOPS dense) at 100%: 37,748,736 / 989e12 s = 0.038169 µs.
    assert.ok(
      Math.abs(tokenUsOf(modelPreset("qwen3-235b-a22b"), hardwarePreset("h100"), 1) - 0.038169) <
        1e-6,
    );
    assert.throws(
      () => tokenUsOf(modelPreset("kimi-k2"), hardwarePreset("h200"), 0),
      EplbInputError,
    );
  });

  test("expertLoadUs = expert bytes over HBM bandwidth", () => {
    assert.ok(Math.abs(expertLoadUsOf(44_050_944, hardwarePreset("h800")) - 13.1495) < 1e-4);
    assert.ok(Math.abs(expertLoadUsOf(48e6, hardwarePreset("h200")) - 10) < 1e-9);
  });

  test("unknown names list the known ones", () => {
    assert.throws(() => modelPreset("gpt"), {
      message: `model ("gpt") is not a known preset; known: ${Object.keys(MODEL_PRESETS).join(", ")}`,
    });
    assert.throws(
      () => hardwarePreset("toString"),
      /hardware \("toString"\) is not a known preset; known: h100, h800, h200/,
    );
  });
});

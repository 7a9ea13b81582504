/**
 * src/core/model/limits.ts: the largest shape eplb plans is refused in one line naming the
 * parameter, its value and the limit, before anything is allocated; the limit itself is planned.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkShapeLimits,
  MAX_LOAD_TOTAL,
  MAX_SHAPE,
  shapeLimitsText,
} from "../../../src/core/model/limits.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const refused = (fn: () => unknown, parameter: string, message: string) =>
  assertRefused(fn, EplbInputError, message, parameter);

describe("checkShapeLimits", () => {
  const cases = [
    ["layers", "layers", MAX_SHAPE.layers],
    ["experts", "numExperts", MAX_SHAPE.experts],
    ["replicas", "numReplicas", MAX_SHAPE.replicas],
    ["groups", "numGroups", MAX_SHAPE.experts],
    ["gpus", "numGpus", MAX_SHAPE.gpus],
    ["nodes", "numNodes", MAX_SHAPE.gpus],
  ] as const;

  for (const [key, name, max] of cases) {
    test(`${key}: ${max} is planned, ${max + 1} is refused as ${name}`, () => {
      assert.doesNotThrow(() => checkShapeLimits({ [key]: max }));
      refused(
        () => checkShapeLimits({ [key]: max + 1 }),
        name,
        `${name} (${max + 1}) must be at most ${max} (the largest shape eplb plans)`,
      );
    });
  }

  test("layers x replicas is bounded as a whole, even when each is within its own limit", () => {
    assert.ok(MAX_SHAPE.layers * MAX_SHAPE.replicas > MAX_SHAPE.slots);
    assert.doesNotThrow(() => checkShapeLimits({ layers: 256, replicas: 65536 }));
    refused(
      () => checkShapeLimits({ layers: 257, replicas: 65536 }),
      "layers x numReplicas",
      `layers x numReplicas (${257 * 65536}) must be at most ${MAX_SHAPE.slots} slots in all (the largest shape eplb plans)`,
    );
    // Either alone is not a product.
    assert.doesNotThrow(() => checkShapeLimits({ layers: 4096 }));
  });

  test("absent sizes are not checked; the caller's names are used in messages", () => {
    assert.doesNotThrow(() => checkShapeLimits({}));
    const names = {
      layers: "layers",
      experts: "experts",
      replicas: "--replicas",
      groups: "--groups",
      nodes: "--nodes",
      gpus: "--gpus",
    };
    refused(
      () => checkShapeLimits({ nodes: 1e6 }, names),
      "--nodes",
      "--nodes (1000000) must be at most 65536 (the largest shape eplb plans)",
    );
  });

  test("engine shapes (DeepSeek-V3: 61 layers of 256 experts on 320 slots) are far inside", () => {
    assert.doesNotThrow(() =>
      checkShapeLimits({ layers: 61, experts: 256, replicas: 320, groups: 8, nodes: 4, gpus: 32 }),
    );
    assert.doesNotThrow(() =>
      checkShapeLimits({ layers: 61, experts: 384, replicas: 512, groups: 1, nodes: 8, gpus: 64 }),
    );
  });
});

describe("the limits as help texts say them", () => {
  test("shapeLimitsText names every limit", () => {
    const text = shapeLimitsText();
    for (const n of [
      MAX_SHAPE.layers,
      MAX_SHAPE.experts,
      MAX_SHAPE.replicas,
      MAX_SHAPE.gpus,
      MAX_SHAPE.slots,
    ]) {
      assert.ok(text.includes(String(n)), `${n} in ${text}`);
    }
    assert.ok(!text.includes("\n"));
  });

  test("a load total at the limit cannot overflow its sum of squares", () => {
    assert.ok(Number.isFinite(MAX_LOAD_TOTAL * MAX_LOAD_TOTAL));
    assert.ok(Number.isFinite(MAX_LOAD_TOTAL * MAX_LOAD_TOTAL * 1e4));
  });
});

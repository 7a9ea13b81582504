import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { copyMs, makeCostModel } from "../../../src/core/cost/model.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const valid = { expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 };

describe("makeCostModel", () => {
  test("keeps the prices given, defaults expertLoadUs to 0 and freezes the result", () => {
    const m = makeCostModel(valid);
    assert.deepEqual({ ...m }, { ...valid, expertLoadUs: 0 });
    assert.ok(Object.isFrozen(m));
    assert.equal(makeCostModel({ ...valid, expertLoadUs: 2.5 }).expertLoadUs, 2.5);
  });

  test("times may be 0 (the term is left out); sizes and bandwidths may not", () => {
    const m = makeCostModel({ ...valid, tokenUs: 0, expertLoadUs: 0 });
    assert.equal(m.tokenUs, 0);
    for (const parameter of ["expertBytes", "intraGbps", "interGbps"] as const) {
      assertRefused(
        () => makeCostModel({ ...valid, [parameter]: 0 }),
        EplbInputError,
        `${parameter} (0) must be a finite number > 0`,
        parameter,
      );
    }
  });

  test("refuses negative, non-finite and non-number values, naming the parameter", () => {
    assertRefused(
      () => makeCostModel({ ...valid, tokenUs: -0.5 }),
      EplbInputError,
      "tokenUs (-0.5) must be a finite number >= 0",
      "tokenUs",
    );
    assertRefused(
      () => makeCostModel({ ...valid, expertLoadUs: Number.NaN }),
      EplbInputError,
      "expertLoadUs (NaN) must be a finite number >= 0",
      "expertLoadUs",
    );
    assertRefused(
      () => makeCostModel({ ...valid, interGbps: Number.POSITIVE_INFINITY }),
      EplbInputError,
      "interGbps (Infinity) must be a finite number > 0",
      "interGbps",
    );
    assertRefused(
      () => makeCostModel({ ...valid, expertBytes: "44e6" as unknown as number }),
      EplbInputError,
      'expertBytes ("44e6") must be a finite number > 0',
      "expertBytes",
    );
  });
});

describe("copyMs", () => {
  test("bits over the link's Gb/s, in milliseconds; a copy on the same GPU is free", () => {
    const m = makeCostModel({ ...valid, tokenUs: 0 });
    assert.equal(copyMs(m, "interNode"), 1); // 400 Mbit over 400 Gb/s
    assert.equal(copyMs(m, "intraNode"), 0.25); // over 1600 Gb/s
    assert.equal(copyMs(m, "local"), 0);
  });

  test("scales with the expert's bytes and inversely with the bandwidth", () => {
    const m = makeCostModel({ expertBytes: 1e9, intraGbps: 8, interGbps: 1, tokenUs: 0 });
    assert.equal(copyMs(m, "intraNode"), 1000);
    assert.equal(copyMs(m, "interNode"), 8000);
  });
});

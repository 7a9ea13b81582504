/**
 * src/core/model/matrix.ts: the loads every entry point takes. Whatever a caller passes, eplb
 * plans on exactly those numbers or refuses them naming the cell: never NaN figures, never a
 * silently reshaped matrix.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkLoadTotal, matrixToArrays, toLoadMatrix } from "../../../src/core/model/matrix.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const refused = (fn: () => unknown, parameter: string, message: string) =>
  assertRefused(fn, EplbInputError, message, parameter);

describe("toLoadMatrix from nested arrays", () => {
  test("copies rows of numbers or typed arrays, row-major", () => {
    const rows = [new Int32Array([1, 2, 3]), [4, 5, 6.5]];
    const m = toLoadMatrix(rows);
    assert.deepEqual([m.layers, m.experts], [2, 3]);
    assert.deepEqual(Array.from(m.data), [1, 2, 3, 4, 5, 6.5]);
    rows[0][0] = 100;
    assert.equal(m.data[0], 1, "a copy: later changes to the input do not reach the plan");
    assert.deepEqual(matrixToArrays(m), [
      [1, 2, 3],
      [4, 5, 6.5],
    ]);
  });

  test("zero loads are valid (an idle layer)", () => {
    assert.deepEqual(Array.from(toLoadMatrix([[0, 0]]).data), [0, 0]);
  });

  test("a bad cell is refused naming its layer and expert", () => {
    refused(
      () =>
        toLoadMatrix([
          [1, 2],
          [3, -1],
        ]),
      "weight[1][1]",
      "weight[1][1] (-1) must be >= 0",
    );
    refused(
      () => toLoadMatrix([[Number.NaN]]),
      "weight[0][0]",
      "weight[0][0] (NaN) must be finite",
    );
    refused(
      () => toLoadMatrix([[1, Number.POSITIVE_INFINITY]], "loads"),
      "loads[0][1]",
      "loads[0][1] (Infinity) must be finite",
    );
    refused(
      () => toLoadMatrix([["1" as unknown as number]]),
      "weight[0][0]",
      'weight[0][0] ("1") must be a number',
    );
  });

  test("a ragged, empty or non-array input is refused", () => {
    refused(
      () => toLoadMatrix([[1, 2], [3]]),
      "weight[1].length",
      "weight[1].length (1) must equal the length of weight[0] (2); the matrix is ragged",
    );
    refused(
      () =>
        toLoadMatrix([
          [1, 2],
          [3, 4, 5],
        ]),
      "weight[1].length",
      "weight[1].length (3) must equal the length of weight[0] (2); the matrix is ragged",
    );
    assert.throws(
      () => toLoadMatrix([]),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "weight",
    );
    assert.throws(
      () => toLoadMatrix([[]]),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "weight[0]",
    );
    assert.throws(
      () => toLoadMatrix([[1], null as unknown as number[]]),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "weight[1]",
    );
    assert.throws(
      () => toLoadMatrix("[[1]]" as unknown as number[][]),
      (e: unknown) =>
        e instanceof EplbInputError &&
        /must be a 2-D array \[layers\]\[experts\] or a LoadMatrix/.test(e.message),
    );
  });

  test("a shape beyond the largest planned is refused before the copy is allocated", () => {
    const wide = [{ length: 70000 } as ArrayLike<number>];
    assert.throws(
      () => toLoadMatrix(wide),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "weight experts",
    );
  });
});

describe("toLoadMatrix from a LoadMatrix", () => {
  test("a valid one is returned as is (no copy)", () => {
    const m = { layers: 1, experts: 2, data: new Float64Array([3, 4]) };
    assert.equal(toLoadMatrix(m), m);
  });

  test("its shape and data are checked as thoroughly as nested arrays", () => {
    refused(
      () => toLoadMatrix({ layers: 2, experts: 2, data: new Float64Array(3) }),
      "weight.data.length",
      "weight.data.length (3) must equal layers * experts (2 * 2 = 4)",
    );
    refused(
      () => toLoadMatrix({ layers: 0, experts: 2, data: new Float64Array(0) }),
      "weight.layers",
      "weight.layers (0) must be an integer >= 1",
    );
    refused(
      () => toLoadMatrix({ layers: 1, experts: 1.5, data: new Float64Array(1) }),
      "weight.experts",
      "weight.experts (1.5) must be an integer >= 1",
    );
    assert.throws(
      () =>
        toLoadMatrix({ layers: 1, experts: 2, data: new Int32Array(2) as unknown as Float64Array }),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "weight.data",
    );
    refused(
      () => toLoadMatrix({ layers: 2, experts: 2, data: new Float64Array([1, 2, 3, -4]) }),
      "weight[1][1]",
      "weight[1][1] (-4) must be >= 0",
    );
  });
});

describe("the load total", () => {
  test("finite loads whose sum overflows are refused, so no figure turns NaN", () => {
    assert.throws(
      () => toLoadMatrix([[1e308, 1e308]]),
      (e: unknown) =>
        e instanceof EplbInputError &&
        e.parameter === "sum of weight" &&
        /^sum of weight \(Infinity\) must be at most 1e\+150/.test(e.message),
    );
    assert.throws(() => checkLoadTotal("loads", [1e150, 1e150]), /sum of loads \(2e\+150\)/);
    assert.doesNotThrow(() => checkLoadTotal("loads", [5e149, 5e149]));
  });
});

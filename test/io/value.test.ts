/**
 * src/io/value.ts: isFileObject tells a dict read from a file from the other values a reader
 * returns (arrays, bytes, tensors), so a tensor is never walked as if it were a dict of keys.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isFileObject } from "../../src/io/value.js";

describe("isFileObject", () => {
  test("a dict is one, even an empty one or one with a `data` key that is not a tensor's", () => {
    assert.equal(isFileObject({ logical_count: [[1, 2]] }), true);
    assert.equal(isFileObject({}), true);
    assert.equal(isFileObject({ data: [1, 2] }), true);
    assert.equal(isFileObject({ data: new Float32Array(2) }), true);
  });

  test("a tensor, bytes, a list, null and scalars are not", () => {
    const tensor = { dtype: "int64", shape: [2], data: new Float64Array([1, 2]) };
    assert.equal(isFileObject(tensor), false);
    assert.equal(isFileObject(new Uint8Array(3)), false);
    assert.equal(isFileObject([1, 2]), false);
    assert.equal(isFileObject([]), false);
    assert.equal(isFileObject(null), false);
    assert.equal(isFileObject(undefined), false);
    for (const scalar of [0, 1n, "x", true]) assert.equal(isFileObject(scalar), false);
  });
});

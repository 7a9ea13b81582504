/** src/core/traces/source.ts: a materialised trace read one step at a time, as the simulator reads it. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { traceSource } from "../../../src/core/traces/source.js";
import { EplbInputError } from "../../../src/index.js";

test("readStep writes step t's layers x experts values at the offset, whatever the data's type", () => {
  const data = new Int32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  for (const typed of [data, Float32Array.from(data), Float64Array.from(data)]) {
    const src = traceSource({ steps: 3, layers: 2, experts: 2, data: typed });
    assert.deepEqual([src.steps, src.layers, src.experts], [3, 2, 2]);
    const out = new Float64Array(6);
    src.readStep(2, out, 1);
    assert.deepEqual([...out], [0, 9, 10, 11, 12, 0]);
    src.readStep(0, out, 0);
    assert.deepEqual([...out.subarray(0, 4)], [1, 2, 3, 4]);
  }
});

test("data of another length than steps x layers x experts is refused, naming the shape", () => {
  assert.throws(
    () => traceSource({ steps: 3, layers: 2, experts: 2, data: new Float64Array(11) }),
    (e: unknown) =>
      e instanceof EplbInputError &&
      e.parameter === "trace.data.length" &&
      e.message === "trace.data.length (11) must equal steps * layers * experts (3 * 2 * 2 = 12)",
  );
});

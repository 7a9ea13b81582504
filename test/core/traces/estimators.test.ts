import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { resolveEstimatorSpec } from "../../../src/blocks.js";
import {
  createEstimator,
  EplbInputError,
  type EstimatorKind,
  estimateLoads,
  type LoadTrace,
} from "../../../src/index.js";

/** Pushes every step of a one-layer trace given as rows and returns the final estimate. */
function run(rows: number[][], spec: Parameters<typeof createEstimator>[2]): number[] {
  const est = createEstimator(1, rows[0].length, spec);
  for (const row of rows) est.push(row);
  return Array.from(est.estimate());
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-9): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `element ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

describe("estimators: hand-computed values", () => {
  test("mean is the mean load per step over the last `window` steps", () => {
    assert.deepEqual(
      run(
        [
          [4, 0],
          [2, 2],
          [0, 4],
        ],
        { kind: "mean", window: 2 },
      ),
      [1, 3],
    );
    // Fewer steps than the window: the mean of what was seen.
    assert.deepEqual(run([[4, 0]], { kind: "mean", window: 5 }), [4, 0]);
  });

  test("max is each expert's largest load in the window, forgetting older steps", () => {
    assert.deepEqual(
      run(
        [
          [9, 0],
          [2, 2],
          [0, 4],
        ],
        { kind: "max", window: 2 },
      ),
      [2, 4],
    );
  });

  test("ema weighs a step by 2^(-age / halfLife), normalised over the steps seen", () => {
    // Half-life 1: weights 1 (newest) and 0.5: (0 * 1 + 4 * 0.5) / 1.5.
    close(run([[4], [0]], { kind: "ema", window: 2, halfLife: 1 }), [4 / 3]);
    // The first estimate is the first step itself, not a value biased towards zero.
    close(run([[10]], { kind: "ema", window: 100 }), [10]);
  });

  test("meanstd is the mean of the slice means plus k population standard deviations", () => {
    // Slices [1, 3] and [5, 7]: means 2 and 6, mean 4, std 2.
    assert.deepEqual(run([[1], [3], [5], [7]], { kind: "meanstd", window: 4, slices: 2 }), [6]);
    assert.deepEqual(
      run([[1], [3], [5], [7]], { kind: "meanstd", window: 4, slices: 2, k: 0.5 }),
      [5],
    );
    // Never negative, even with a negative k.
    assert.deepEqual(run([[0], [8]], { kind: "meanstd", window: 2, slices: 2, k: -3 }), [0]);
  });

  test("before any step every estimate is zero", () => {
    for (const kind of ["mean", "ema", "max", "meanstd"] as EstimatorKind[]) {
      assert.deepEqual(
        Array.from(createEstimator(2, 2, { kind, window: 3 }).estimate()),
        [0, 0, 0, 0],
      );
    }
  });

  test("push reads a step at an offset of a larger buffer (layers x experts values)", () => {
    const est = createEstimator(2, 2, { kind: "mean", window: 1 });
    est.push(new Float64Array([9, 9, 1, 2, 3, 4]), 2);
    assert.deepEqual(Array.from(est.estimate()), [1, 2, 3, 4]);
    assert.equal(est.seen, 1);
  });
});

describe("estimators: the incremental estimate equals the direct one at every step", () => {
  const kinds: EstimatorKind[] = ["mean", "ema", "max", "meanstd"];
  test("random traces, windows, half-lives and slices", () => {
    fc.assert(
      fc.property(
        fc.record({
          kind: fc.constantFrom(...kinds),
          steps: fc.integer({ min: 1, max: 30 }),
          layers: fc.integer({ min: 1, max: 3 }),
          experts: fc.integer({ min: 1, max: 5 }),
          window: fc.integer({ min: 1, max: 12 }),
          halfLife: fc.double({ min: 0.3, max: 20, noNaN: true }),
          slices: fc.integer({ min: 1, max: 5 }),
          k: fc.double({ min: -1, max: 3, noNaN: true }),
          float: fc.boolean(),
          seed: fc.integer(),
        }),
        (c) => {
          const n = c.layers * c.experts;
          let s = c.seed >>> 0;
          const data = new Float64Array(c.steps * n);
          for (let i = 0; i < data.length; i++) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            data[i] = c.float ? (s / 4294967296) * 1000 : s % 50;
          }
          const trace: LoadTrace = { steps: c.steps, layers: c.layers, experts: c.experts, data };
          const spec = {
            kind: c.kind,
            window: c.window,
            halfLife: c.halfLife,
            slices: c.slices,
            k: c.k,
          };
          const est = createEstimator(c.layers, c.experts, spec);
          const out = new Float64Array(n);
          for (let t = 0; t < c.steps; t++) {
            est.push(data, t * n);
            close(est.estimate(out), estimateLoads(trace, t + 1, spec), 1e-7);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a long float trace keeps the running mean exact to rounding (no drift)", () => {
    const est = createEstimator(1, 1, { kind: "mean", window: 7 });
    const rows: number[] = [];
    for (let t = 0; t < 5000; t++) rows.push(((t * 7919) % 1000) * 1e6 + 0.1);
    for (const v of rows) est.push([v]);
    const expected = rows.slice(-7).reduce((a, b) => a + b, 0) / 7;
    close(est.estimate(), [expected], 1e-12);
  });
});

describe("estimators: bad input", () => {
  test("unknown kind, bad window, half-life and slices are EplbInputErrors naming the parameter", () => {
    assert.throws(
      () => createEstimator(1, 1, { kind: "median" as EstimatorKind, window: 3 }),
      (e: unknown) =>
        e instanceof EplbInputError &&
        e.message === 'estimator ("median") must be one of: mean, ema, max, meanstd',
    );
    assert.throws(
      () => createEstimator(1, 1, { kind: "mean", window: 0 }),
      /window \(0\) must be an integer >= 1/,
    );
    assert.throws(
      () => createEstimator(1, 1, { kind: "ema", window: 3, halfLife: 0 }),
      /halfLife \(0\) must be a number > 0/,
    );
    assert.throws(
      () => createEstimator(1, 1, { kind: "meanstd", window: 3, slices: 0 }),
      /slices \(0\) must be an integer >= 1/,
    );
    assert.throws(
      () =>
        estimateLoads({ steps: 2, layers: 1, experts: 1, data: new Float64Array(2) }, 3, {
          kind: "mean",
          window: 1,
        }),
      /end \(3\) must be <= the trace's steps \(2\)/,
    );
  });

  test("defaults: ema half-life is window / 4, meanstd uses k 1 and 4 slices", () => {
    assert.deepEqual(resolveEstimatorSpec({ kind: "ema", window: 100 }), {
      kind: "ema",
      window: 100,
      halfLife: 25,
      k: 1,
      slices: 4,
    });
  });
});

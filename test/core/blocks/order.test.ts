import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  OrderWorkspace,
  orderBitsDescending,
  orderDescending,
} from "../../../src/core/blocks/order.js";
import { plainOrder } from "../../helpers/plain-reference.js";

/** The sign-less float32 bits orderBitsDescending takes, as a caller keeping Float32Arrays has them. */
function bitsOf(w: ArrayLike<number>): Int32Array {
  const f = Float32Array.from(w);
  const bits = new Int32Array(f.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] &= 0x7fffffff;
  return bits;
}

// Shapes that take each path: insertion sort (<= 16), bucket sort, and, where one outlier
// defeats the buckets, quicksort (< 128 items) or radix sort (>= 128).
const sizes = [1, 2, 15, 16, 17, 100, 127, 128, 129, 300];
const tieHeavy = (n: number) =>
  fc.array(
    fc.oneof(fc.integer({ min: 0, max: 5 }), fc.double({ min: 0, max: 1e30, noNaN: true })),
    {
      minLength: n,
      maxLength: n,
    },
  );
const outlier = (n: number, seed: number) => {
  const w = Array.from({ length: n }, (_, i) => 1 + (((i + seed) * 7919) % n) / n);
  w[(seed * 31) % n] = 1e30;
  w[(seed * 17 + 1) % n] = 0;
  if (n > 4) w[(seed * 13 + 2) % n] = w[(seed * 5 + 3) % n]; // a tie far apart
  return w;
};

describe("orderBitsDescending", () => {
  test("orders float32 bit patterns as orderDescending orders the floats, on every path", () => {
    const ws = new OrderWorkspace();
    for (const n of sizes) {
      fc.assert(
        fc.property(tieHeavy(n), (w) => {
          const order = new Int32Array(n);
          orderBitsDescending(bitsOf(w), n, order, ws);
          assert.deepEqual(Array.from(order), plainOrder(w));
        }),
        { numRuns: 40 },
      );
      for (let seed = 0; seed < 5; seed++) {
        const w = outlier(n, seed);
        const order = new Int32Array(n);
        orderBitsDescending(bitsOf(w), n, order, ws);
        assert.deepEqual(Array.from(order), plainOrder(w), `outlier n=${n} seed=${seed}`);
      }
    }
  });

  test("only reads the bits, and one workspace serves growing and shrinking sizes", () => {
    const ws = new OrderWorkspace();
    for (const n of [300, 20, 5, 140, 60]) {
      const w = outlier(n, n);
      const bits = bitsOf(w);
      const copy = bits.slice();
      const order = new Int32Array(n + 3).fill(-7);
      orderBitsDescending(bits, n, order, ws);
      assert.deepEqual(bits, copy);
      assert.deepEqual(Array.from(order.subarray(0, n)), plainOrder(w));
      // Nothing past n is written.
      assert.deepEqual(Array.from(order.subarray(n)), [-7, -7, -7]);
    }
  });

  test("n = 0 writes nothing", () => {
    const order = new Int32Array(2).fill(9);
    orderBitsDescending(new Int32Array(0), 0, order);
    assert.deepEqual(Array.from(order), [9, 9]);
  });
});

describe("orderDescending", () => {
  test("the documented example", () => {
    const order = new Int32Array(4);
    orderDescending(new Float64Array([1, 3, 3, 2]), 4, order);
    assert.deepEqual(Array.from(order), [1, 2, 3, 0]);
  });

  test("compares as float32: values equal after rounding tie, by ascending index; -0 is 0", () => {
    const a = 1 + 2 ** -30; // rounds to 1 in float32
    const order = new Int32Array(4);
    orderDescending([1, a, -0, 0], 4, order);
    assert.deepEqual(Array.from(order), [0, 1, 2, 3]);
    orderDescending([0, -0, 1, a], 4, order);
    assert.deepEqual(Array.from(order), [2, 3, 0, 1]);
  });

  test("matches the plain comparator sort at every size around the path switches", () => {
    const ws = new OrderWorkspace();
    for (const n of sizes) {
      for (let seed = 0; seed < 5; seed++) {
        const w = outlier(n, seed);
        const order = new Int32Array(n);
        orderDescending(w, n, order, ws);
        assert.deepEqual(Array.from(order), plainOrder(w));
      }
    }
  });
});

describe("the size limit", () => {
  test("more than 2^22 items is a RangeError naming the function that refused", () => {
    const n = 2 ** 22 + 1;
    assert.throws(
      () => orderDescending([], n, new Int32Array(0)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message === `orderDescending sorts at most 2^22 items, got ${n}`,
    );
    assert.throws(
      () => orderBitsDescending(new Int32Array(0), n, new Int32Array(0)),
      (e: unknown) =>
        e instanceof RangeError &&
        e.message === `orderBitsDescending sorts at most 2^22 items, got ${n}`,
    );
  });
});

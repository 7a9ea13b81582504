/**
 * src/io/tensor.ts: the element decoding, shape checks and strided gathers every array reader
 * shares. The fast paths (typed-array views of native-endian aligned bytes, the odometer
 * gather) must equal the plain ones, half floats must decode as numpy and torch decode them,
 * and a value or shape a float64 array cannot hold exactly is refused naming the file.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe as suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  checkedNumel,
  contiguousStrides,
  DTYPE_SIZE,
  type DType,
  decodeElements,
  describe,
  gatherStrided,
  isTensor,
  MAX_DIMS,
  MAX_TENSOR_ELEMENTS,
  nestedToTensor,
  stridedSpan,
} from "../../src/io/tensor.js";
import { assertRefused } from "../helpers/refused.js";
import { encode } from "./support.js";

const refused = (fn: () => unknown, message: string) => assertRefused(fn, EplbFormatError, message);

/** Values each dtype holds exactly, for round trips. */
const ARB: Record<Exclude<DType, "float16" | "bfloat16">, fc.Arbitrary<number>> = {
  bool: fc.constantFrom(0, 1),
  int8: fc.integer({ min: -128, max: 127 }),
  uint8: fc.integer({ min: 0, max: 255 }),
  int16: fc.integer({ min: -32768, max: 32767 }),
  uint16: fc.integer({ min: 0, max: 65535 }),
  int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  int64: fc.maxSafeInteger(),
  uint64: fc.maxSafeNat(),
  float32: fc.float({ noNaN: true }).map(Math.fround),
  float64: fc.double({ noNaN: true }),
};

/** The same bytes at a chosen byte offset of a fresh buffer (to reach the unaligned path). */
function at(bytes: Uint8Array, offset: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + offset);
  buf.set(bytes, offset);
  return buf.subarray(offset);
}

suite("decodeElements", () => {
  for (const [dtype, arb] of Object.entries(ARB) as [keyof typeof ARB, fc.Arbitrary<number>][]) {
    test(`${dtype}: native, byte-swapped and unaligned paths all give the values back`, () => {
      fc.assert(
        fc.property(
          fc.array(arb, { maxLength: 20 }),
          fc.integer({ min: 0, max: 7 }),
          (values, offset) => {
            const want = values.map((v) =>
              Object.is(v, -0) && dtype !== "float32" && dtype !== "float64" ? 0 : v,
            );
            const le = decodeElements(
              at(encode(dtype, values, true), offset),
              dtype,
              true,
              values.length,
              "f",
            );
            const be = decodeElements(
              at(encode(dtype, values, false), offset),
              dtype,
              false,
              values.length,
              "f",
            );
            assert.deepEqual(Array.from(le), want);
            assert.deepEqual(Array.from(be), want);
          },
        ),
        { seed: 31, numRuns: 60 },
      );
    });
  }

  test("float16 and bfloat16 decode as numpy and torch do, in both byte orders", () => {
    // Made by test/fixtures/io/make_half_floats.py.
    const lines = readFileSync(
      fileURLToPath(new URL("../../../test/fixtures/io/half-floats.txt", import.meta.url)),
      "utf8",
    )
      .trim()
      .split("\n");
    const parse = (s: string) =>
      s === "inf" ? Infinity : s === "-inf" ? -Infinity : s === "nan" ? Number.NaN : Number(s);
    assert.equal(lines.length, 60);
    for (const line of lines) {
      const [dtype, bits, value] = line.split(" ");
      const b = Number.parseInt(bits, 16);
      for (const le of [true, false]) {
        const bytes = le ? new Uint8Array([b & 0xff, b >> 8]) : new Uint8Array([b >> 8, b & 0xff]);
        const got = decodeElements(bytes, dtype as DType, le, 1, "h")[0];
        assert.ok(Object.is(got, parse(value)), `${line}: got ${got}`);
      }
    }
  });

  test("bool is 1 for any non-zero byte", () => {
    assert.deepEqual(
      Array.from(decodeElements(new Uint8Array([0, 1, 2, 255]), "bool", true, 4, "b")),
      [0, 1, 1, 1],
    );
  });

  test("64-bit integers beyond +-2^53 are refused naming the element, on both paths", () => {
    const big = new Uint8Array(16);
    const v = new DataView(big.buffer);
    v.setBigInt64(8, 2n ** 53n, true);
    const message =
      "x.npy: 64-bit integer at element 1 is beyond +-2^53 and cannot be represented exactly";
    refused(() => decodeElements(big, "int64", true, 2, "x.npy"), message);
    const swapped = new Uint8Array(16);
    new DataView(swapped.buffer).setBigInt64(8, -(2n ** 53n) - 1n, false);
    refused(() => decodeElements(swapped, "int64", false, 2, "x.npy"), message);
    const unsigned = new Uint8Array(16);
    new DataView(unsigned.buffer).setBigUint64(8, 2n ** 63n, true);
    refused(() => decodeElements(unsigned, "uint64", true, 2, "x.npy"), message);
    refused(
      () => decodeElements(unsigned.slice().reverse(), "uint64", false, 2, "x.npy"),
      message.replace("element 1", "element 0"),
    );
    const below = new Uint8Array(8);
    new DataView(below.buffer).setBigInt64(0, -(2n ** 53n) - 1n, true);
    refused(
      () => decodeElements(below, "int64", true, 1, "x.npy"),
      message.replace("element 1", "element 0"),
    );
    const edge = new Uint8Array(8);
    new DataView(edge.buffer).setBigInt64(0, -(2n ** 53n), true);
    assert.equal(decodeElements(edge, "int64", true, 1, "x")[0], -(2 ** 53));
  });

  test("too few bytes is a truncation naming the counts; `out` is filled in place", () => {
    refused(
      () => decodeElements(new Uint8Array(7), "float64", true, 1, "t.npy"),
      "t.npy: truncated data: 1 float64 elements need 8 bytes, 7 present",
    );
    const out = new Float64Array(3);
    assert.equal(decodeElements(encode("int32", [4, 5]), "int32", true, 2, "f", out), out);
    assert.deepEqual(Array.from(out), [4, 5, 0]);
  });
});

suite("checkedNumel", () => {
  test("the product, 0 with a zero dimension, 1 for a scalar", () => {
    assert.equal(checkedNumel([16, 4, 16], 1e6, "f", "shape"), 1024);
    assert.equal(checkedNumel([0, 2 ** 52], 0, "f", "shape"), 0);
    assert.equal(checkedNumel([], 1, "f", "shape"), 1);
  });

  test("each refusal names the file, what is checked and the rule", () => {
    refused(() => checkedNumel("x", 9, "f", "shape"), "f: shape is not a list of sizes");
    refused(
      () => checkedNumel(new Array(MAX_DIMS + 1).fill(1), 9, "f", "shape"),
      `f: shape has ${MAX_DIMS + 1} dimensions (at most ${MAX_DIMS})`,
    );
    checkedNumel(new Array(MAX_DIMS).fill(1), 9, "f", "shape");
    refused(() => checkedNumel([2, -1], 9, "f", "shape"), "f: shape has an invalid size -1");
    refused(() => checkedNumel([1.5], 9, "f", "shape"), "f: shape has an invalid size 1.5");
    refused(() => checkedNumel(["2"], 9, "f", "shape"), "f: shape has an invalid size 2");
    refused(
      () => checkedNumel([3, 4], 11, "f", "shape"),
      "f: shape [3, 4] has 12 elements, more than the file can hold (11)",
    );
    assert.equal(checkedNumel([3, 4], 12, "f", "shape"), 12);
    refused(
      () => checkedNumel([2 ** 14, 2 ** 14 + 1], Infinity, "f", "shape"),
      `f: shape [16384, 16385] has ${2 ** 14 * (2 ** 14 + 1)} elements, more than the ${MAX_TENSOR_ELEMENTS} eplb reads whole`,
    );
    assert.equal(
      checkedNumel([2 ** 14, 2 ** 14 + 1], Infinity, "f", "shape", Infinity),
      2 ** 14 * (2 ** 14 + 1),
    );
  });
});

suite("gatherStrided, stridedSpan, contiguousStrides", () => {
  /** Element by element from the definition: index . strides + offset. */
  function plainGather(src: Float64Array, offset: number, shape: number[], strides: number[]) {
    const out: number[] = [];
    const total = shape.reduce((a, b) => a * b, 1);
    for (let flat = 0; flat < total; flat++) {
      let rest = flat;
      let at = offset;
      for (let d = shape.length - 1; d >= 0; d--) {
        at += (rest % shape[d]) * strides[d];
        rest = Math.floor(rest / shape[d]);
      }
      out.push(src[at]);
    }
    return out;
  }

  test("the odometer gather equals the definition, and the span bounds every index it reads", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 5 }),
        (shape, rawStrides, offset) => {
          const strides = rawStrides.slice(0, shape.length);
          const span = stridedSpan(offset, shape, strides);
          const size = (span?.max ?? offset) + 1;
          const src = Float64Array.from({ length: size }, (_, i) => i * 10 + 1);
          assert.deepEqual(
            Array.from(gatherStrided(src, offset, shape, strides)),
            plainGather(src, offset, shape, strides),
          );
          if (span === null) assert.ok(shape.includes(0));
          else {
            const read = plainGather(
              Float64Array.from({ length: size }, (_, i) => i),
              offset,
              shape,
              strides,
            );
            assert.equal(Math.min(...read), span.min);
            assert.equal(Math.max(...read), span.max);
          }
        },
      ),
      { seed: 33, numRuns: 300 },
    );
  });

  test("a negative stride reaches below the offset", () => {
    assert.deepEqual(stridedSpan(5, [3], [-2]), { min: 1, max: 5 });
    assert.deepEqual(
      Array.from(gatherStrided(new Float64Array([0, 1, 2, 3, 4, 5]), 5, [3], [-2])),
      [5, 3, 1],
    );
  });

  test("contiguous strides are row-major", () => {
    assert.deepEqual(contiguousStrides([16, 4, 16]), [64, 16, 1]);
    assert.deepEqual(contiguousStrides([]), []);
    assert.deepEqual(contiguousStrides([3, 0, 2]), [0, 2, 1]);
  });
});

suite("nestedToTensor", () => {
  test("nested lists, a scalar, an empty list, a list of tensors", () => {
    const t = nestedToTensor(
      [
        [1, 2],
        [3, 4],
      ],
      100,
      "x.json",
      "weight",
    );
    assert.deepEqual([t.dtype, t.shape, Array.from(t.data)], ["float64", [2, 2], [1, 2, 3, 4]]);
    assert.deepEqual(nestedToTensor(7, 1, "f", "w").shape, []);
    assert.deepEqual(nestedToTensor([], 0, "f", "w").shape, [0]);
    const row = (a: number, b: number) => ({
      dtype: "int32" as const,
      shape: [2],
      data: new Float64Array([a, b]),
    });
    const s = nestedToTensor([row(1, 2), row(3, 4)], 100, "l.pt", "logical_count");
    assert.deepEqual([s.dtype, s.shape, Array.from(s.data)], ["int32", [2, 2], [1, 2, 3, 4]]);
  });

  test("ragged, non-numeric and mismatched tensors are refused at their index", () => {
    refused(
      () => nestedToTensor([[1, 2], [3]], 100, "x.json", "w"),
      "x.json: w[1] has length 1, expected 2 (ragged array)",
    );
    refused(
      () =>
        nestedToTensor(
          [
            [1, 2],
            [3, "4"],
          ],
          100,
          "x.json",
          "w",
        ),
      "x.json: w[1][1] is a string, not a number",
    );
    refused(() => nestedToTensor([[1, 2], 3], 100, "x.json", "w"), "x.json: w[1] is not an array");
    refused(() => nestedToTensor("x", 100, "x.json", "w"), "x.json: w is not a number or an array");
    const row = (n: number) => ({ dtype: "int64" as const, shape: [n], data: new Float64Array(n) });
    refused(
      () => nestedToTensor([row(2), row(3)], 100, "l.pt", "c"),
      "l.pt: c[1] is not a tensor of shape [2]",
    );
  });

  test("bounds: the file's size, the depth, and lists that hold nothing", () => {
    refused(
      () =>
        nestedToTensor(
          [
            [1, 2],
            [3, 4],
          ],
          3,
          "f",
          "w",
        ),
      "f: w shape [2, 2] has 4 elements, more than the file can hold (3)",
    );
    let deep: unknown = [1];
    for (let i = 0; i < MAX_DIMS; i++) deep = [deep];
    refused(
      () => nestedToTensor(deep, 1e9, "f", "w"),
      `f: w is nested deeper than ${MAX_DIMS} levels`,
    );
    const empty: unknown[] = [];
    const wide = new Array(100).fill(new Array(100).fill(empty));
    refused(
      () => nestedToTensor(wide, 1000, "f", "w"),
      "f: w has more nested lists than the file can hold",
    );
  });
});

suite("isTensor and describe", () => {
  test("a tensor needs Float64Array data, a shape array and a dtype", () => {
    assert.equal(isTensor({ dtype: "int64", shape: [2], data: new Float64Array(2) }), true);
    assert.equal(isTensor({ shape: [2], data: [1, 2], dtype: "int64" }), false);
    assert.equal(isTensor({ shape: "2", data: new Float64Array(2), dtype: "int64" }), false);
    assert.equal(isTensor({ shape: [2], data: new Float64Array(2) }), false);
    assert.equal(isTensor(null), false);
  });

  test("one phrase per kind of value, for messages", () => {
    const cases: [unknown, string][] = [
      [null, "null"],
      [[1], "a list"],
      [{ dtype: "int64", shape: [2, 3], data: new Float64Array(6) }, "a 2-D tensor"],
      [new Uint8Array(1), "bytes"],
      ["s", "a string"],
      [true, "a boolean (true)"],
      [2n ** 60n, "an integer beyond 2^53"],
      [undefined, "missing"],
      [1.5, "the number 1.5"],
      [{ a: 1 }, "an object"],
    ];
    for (const [value, text] of cases) assert.equal(describe(value), text);
  });

  test("DTYPE_SIZE is each dtype's element width", () => {
    for (const [dtype, size] of Object.entries(DTYPE_SIZE) as [DType, number][]) {
      assert.equal(encode(dtype, [1, 0]).length, 2 * size, dtype);
    }
    assert.equal(Object.keys(DTYPE_SIZE).length, 13);
  });
});

/**
 * src/io/npy-write.ts: the .npy files eplb writes (traces, loads) must be the bytes numpy.save
 * writes, so numpy and every engine read them; a value or a count that does not fit the shape
 * and dtype is refused before anything reaches the disk, and a failed stream leaves the old file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { EplbInputError } from "../../src/core/model/errors.js";
import { readNpy } from "../../src/io/npy.js";
import { encodeNpy, NpyWriter, npyHeader, writeNpy } from "../../src/io/npy-write.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir } = tempFiles("eplb-npy-write-");
/** A fresh folder per test, so "no temporary file left" looks at that test's files only. */
const folder = () => mkdtempSync(join(dir, "t-"));
const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../../test/fixtures/io/${name}`, import.meta.url)));

describe("encodeNpy: numpy.save's bytes", () => {
  // Made by test/fixtures/io/make_npy_write.py with numpy.save (numpy 1.24).
  const cases: [string, number[], number[], "float32" | "float64" | "int64"][] = [
    ["npy-write-f4-2x3.npy", [0.1, -2, 3.5, 1e30, 0, -0], [2, 3], "float32"],
    ["npy-write-f8-4.npy", [0.1, -1e300, 5e-324, 2], [4], "float64"],
    [
      "npy-write-i8-2x1x3.npy",
      [0, -1, 2 ** 32, 2 ** 53 - 1, -(2 ** 53) + 1, -(2 ** 31)],
      [2, 1, 3],
      "int64",
    ],
    ["npy-write-i8-0d.npy", [7], [], "int64"],
    ["npy-write-f8-0x2.npy", [], [0, 2], "float64"],
  ];
  for (const [name, values, shape, dtype] of cases) {
    test(`${name}: the same bytes as numpy`, () => {
      assert.deepEqual([...encodeNpy(values, shape, dtype)], [...fixture(name)]);
    });
  }
});

describe("npyHeader", () => {
  test("version 1.0, data on a 64-byte boundary, the dict padded with spaces and a newline", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(1_000_000_000), { maxLength: 12 }),
        fc.constantFrom("float32", "float64", "int64" as const),
        (shape, dtype) => {
          const h = npyHeader(dtype, shape);
          assert.equal(h.length % 64, 0);
          assert.deepEqual([...h.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
          assert.equal(h[8] | (h[9] << 8), h.length - 10);
          assert.equal(h[h.length - 1], 0x0a);
          const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
          assert.match(
            new TextDecoder().decode(h.subarray(10)),
            new RegExp(
              `^\\{'descr': '<[fi][48]', 'fortran_order': False, 'shape': ${tuple.replace(/[()]/g, "\\$&")}, \\} *\\n$`,
            ),
          );
        },
      ),
      { seed: 21, numRuns: 200 },
    );
  });

  test("a bad dtype or shape is refused naming the parameter", () => {
    assertRefused(
      () => npyHeader("int32" as "int64", [1]),
      EplbInputError,
      /^dtype \("int32"\) must be one of: float32, float64, int64$/,
    );
    for (const shape of [[-1], [1.5], [2, Number.NaN]]) {
      assertRefused(
        () => npyHeader("int64", shape),
        EplbInputError,
        /^shape .* must hold integers >= 0$/,
      );
    }
  });
});

describe("encodeNpy: refusals", () => {
  test("values must fill the shape exactly", () => {
    assertRefused(
      () => encodeNpy([1, 2, 3], [2, 2], "float64"),
      EplbInputError,
      "values.length (3) must equal the shape's 4 elements",
    );
  });

  test("int64 takes safe integers only, and names the first bad value", () => {
    for (const [v, shown] of [
      [0.5, "0.5"],
      [2 ** 53, "9007199254740992"],
      [Number.NaN, "NaN"],
    ] as const) {
      assertRefused(
        () => encodeNpy([1, v], [2], "int64"),
        EplbInputError,
        `values[1] (${shown}) must be a safe integer to be written as int64`,
      );
    }
  });

  test("random int64 and float64 arrays read back exactly through eplb's .npy reader", () => {
    fc.assert(
      fc.property(fc.array(fc.maxSafeInteger(), { minLength: 1, maxLength: 40 }), (values) => {
        const t = readNpy(encodeNpy(values, [values.length], "int64"), "r.npy");
        assert.deepEqual(Array.from(t.data), values);
        const f = readNpy(encodeNpy(values, [1, values.length], "float64"), "r.npy");
        assert.deepEqual(Array.from(f.data), values);
      }),
      { seed: 22, numRuns: 100 },
    );
  });
});

describe("writeNpy and NpyWriter", () => {
  test("writeNpy writes encodeNpy's bytes; a refused value leaves the old file", () => {
    const d = folder();
    const path = join(d, "l.npy");
    writeNpy(path, [1, 2, 3, 4], [2, 2], "int64");
    assert.deepEqual([...readFileSync(path)], [...encodeNpy([1, 2, 3, 4], [2, 2], "int64")]);
    assert.throws(() => writeNpy(path, [1, 0.5], [2], "int64"), EplbInputError);
    assert.deepEqual([...readFileSync(path)], [...encodeNpy([1, 2, 3, 4], [2, 2], "int64")]);
    assert.deepEqual(readdirSync(d), ["l.npy"]);
  });

  test("a stream in several writes equals the whole array", () => {
    const d = folder();
    const path = join(d, "t.npy");
    const w = new NpyWriter(path, "float32", [3, 2]);
    w.write([1, 2]);
    w.write(new Float64Array([3, 4, 5]));
    w.write([6]);
    w.close();
    w.close(); // twice is harmless
    assert.deepEqual(
      [...readFileSync(path)],
      [...encodeNpy([1, 2, 3, 4, 5, 6], [3, 2], "float32")],
    );
    assert.deepEqual(readdirSync(d), ["t.npy"]);
  });

  test("too many or too few values: refused, the old file kept, no temporary file", () => {
    const d = folder();
    const path = join(d, "t.npy");
    writeFileSync(path, "old");
    const over = new NpyWriter(path, "int64", [2]);
    over.write([1]);
    assertRefused(
      () => over.write([2, 3]),
      EplbInputError,
      "values (3) exceed the shape's 2 elements",
    );
    assert.throws(() => over.write([1]), /already closed/);
    const under = new NpyWriter(path, "int64", [2]);
    under.write([1]);
    assertRefused(
      () => under.close(),
      EplbInputError,
      "values (1) must total the shape's 2 elements",
    );
    const aborted = new NpyWriter(path, "int64", [1]);
    aborted.write([1]);
    aborted.abort();
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(readdirSync(d), ["t.npy"]);
  });

  test("a bad shape is refused before any file is created", () => {
    const d = folder();
    assert.throws(() => new NpyWriter(join(d, "x.npy"), "int64", [-2]), EplbInputError);
    assert.deepEqual(readdirSync(d), []);
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { readNpy } from "../../src/io/npy.js";
import { concat, npyBytes } from "./support.js";

const formatError = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");

describe("npy dtypes, byte orders and versions", () => {
  const cases: [string, number[]][] = [
    ["<i4", [0, 1, -2, 2147483647, -2147483648, 7]],
    [">i4", [0, 1, -2, 2147483647, -2147483648, 7]],
    ["<i8", [0, 1, -2, 2 ** 53 - 1, -(2 ** 53), 123456789012]],
    [">i8", [0, 1, -2, 2 ** 53 - 1, -(2 ** 53), 123456789012]],
    ["<u8", [0, 1, 2, 2 ** 53 - 1, 4294967296, 4294967295]],
    [">u8", [0, 1, 2, 2 ** 53 - 1, 4294967296, 4294967295]],
    ["<f4", [0, 1.5, -2.25, 1e10, 3.0517578125e-5, 7]],
    [">f4", [0, 1.5, -2.25, 1e10, 3.0517578125e-5, 7]],
    ["<f8", [0, 0.1, -2.5, 1e300, 5e-324, 7]],
    [">f8", [0, 0.1, -2.5, 1e300, 5e-324, 7]],
    ["<f2", [0, 1.5, -2.25, 65504, 2 ** -24, 0.099975586]],
    [">f2", [0, 1.5, -2.25, 65504, 2 ** -24, 0.099975586]],
    ["<i2", [0, 1, -2, 32767, -32768, 7]],
    [">i2", [0, 1, -2, 32767, -32768, 7]],
    ["<u2", [0, 1, 2, 65535, 40000, 7]],
    ["<u4", [0, 1, 2, 4294967295, 40000, 7]],
    [">u4", [0, 1, 2, 4294967295, 40000, 7]],
    ["|u1", [0, 1, 2, 255, 128, 7]],
    ["|i1", [0, 1, -2, 127, -128, 7]],
    ["|b1", [0, 1, 1, 0, 1, 0]],
    ["=f8", [0, 1, 2, 3, 4, 5]],
  ];
  for (const [descr, values] of cases) {
    for (const version of [1, 2, 3] as const) {
      test(`${descr} v${version}`, () => {
        const t = readNpy(npyBytes(descr, [2, 3], values, { version }), "x.npy");
        assert.deepEqual(t.shape, [2, 3]);
        if (descr.endsWith("f2")) {
          assert.deepEqual(
            Array.from(t.data).map((v) => Number(v.toPrecision(4))),
            values.map((v) => Number(v.toPrecision(4))),
          );
        } else {
          assert.deepEqual(Array.from(t.data), values);
        }
      });
    }
  }

  test("float16 specials: infinities, NaN, negative zero, subnormals", () => {
    const t = readNpy(
      npyBytes("<f2", [5], [Infinity, -Infinity, Number.NaN, -0, 2 ** -20]),
      "x.npy",
    );
    assert.equal(t.data[0], Infinity);
    assert.equal(t.data[1], -Infinity);
    assert.ok(Number.isNaN(t.data[2]));
    assert.ok(Object.is(t.data[3], -0));
    assert.equal(t.data[4], 2 ** -20);
  });

  test("int64 beyond 2^53 is refused, not rounded", () => {
    const bytes = npyBytes("<i8", [1], [0]);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    view.setBigInt64(bytes.length - 8, 2n ** 53n + 1n, true);
    assert.throws(() => readNpy(bytes, "big.npy"), formatError(/beyond \+-2\^53/));
    view.setBigInt64(bytes.length - 8, -(2n ** 60n), true);
    assert.throws(() => readNpy(bytes, "big.npy"), formatError(/beyond/));
    const u = npyBytes(">u8", [1], [0]);
    new DataView(u.buffer, u.byteOffset).setBigUint64(u.length - 8, 2n ** 63n, false);
    assert.throws(() => readNpy(u, "big.npy"), formatError(/beyond/));
  });

  test("unaligned data (odd header padding from old numpy) still decodes", () => {
    // Old numpy padded headers to 16 bytes; build a header whose data starts at offset 90.
    const header = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
    const padded = `${header}${" ".repeat(90 - 10 - header.length - 1)}\n`;
    const pre = new Uint8Array(10);
    pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length, 0]);
    const data = new Uint8Array(24);
    const dv = new DataView(data.buffer);
    for (const [i, v] of [5, -6, 7].entries()) dv.setBigInt64(i * 8, BigInt(v), true);
    const bytes = concat(pre, new TextEncoder().encode(padded), data);
    assert.deepEqual(Array.from(readNpy(bytes, "old.npy").data), [5, -6, 7]);
    // And when the buffer itself starts at an odd offset.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    assert.deepEqual(Array.from(readNpy(shifted.subarray(1), "old.npy").data), [5, -6, 7]);
  });
});

describe("npy layout", () => {
  const values = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10 + 1);

  test("fortran_order 3-D is transposed to row-major", () => {
    for (const descr of ["<f8", ">i4", "<i8"]) {
      const t = readNpy(npyBytes(descr, [2, 3, 4], values, { fortran: true }), "f.npy");
      assert.deepEqual(t.shape, [2, 3, 4]);
      assert.deepEqual(Array.from(t.data), values);
    }
  });

  test("fortran_order 2-D and 1-D", () => {
    const six = [1, 2, 3, 4, 5, 6];
    assert.deepEqual(
      Array.from(readNpy(npyBytes("<f4", [2, 3], six, { fortran: true }), "f").data),
      six,
    );
    assert.deepEqual(
      Array.from(readNpy(npyBytes("<f4", [6], six, { fortran: true }), "f").data),
      six,
    );
  });

  test("0-d, empty and 1-element shapes", () => {
    const scalar = readNpy(
      npyBytes("<f8", [], [3.5], {
        header: "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
      }),
      "s",
    );
    assert.deepEqual(scalar.shape, []);
    assert.deepEqual(Array.from(scalar.data), [3.5]);
    const empty = readNpy(npyBytes("<f8", [0, 4], []), "e");
    assert.deepEqual(empty.shape, [0, 4]);
    assert.equal(empty.data.length, 0);
    assert.deepEqual(readNpy(npyBytes("<i8", [5], [1, 2, 3, 4, 5]), "v").shape, [5]);
  });

  test("header quirks: double quotes, Python 2 long suffix, key order, no trailing comma", () => {
    const make = (header: string) => npyBytes("<i4", [2], [1, 2], { header });
    for (const header of [
      '{"descr": "<i4", "fortran_order": False, "shape": (2,)}',
      "{'shape': (2L,), 'fortran_order': False, 'descr': '<i4'}",
      "{ 'descr' : '<i4' , 'fortran_order' : False , 'shape' : ( 2 , ) , }",
      "{'descr': '<i4', 'fortran_order': False, 'shape': [2]}",
    ]) {
      assert.deepEqual(Array.from(readNpy(make(header), "h").data), [1, 2], header);
    }
  });
});

describe("npy errors", () => {
  const good = npyBytes("<i8", [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]);

  test("wrong magic, bad version", () => {
    assert.throws(() => readNpy(new Uint8Array([1, 2, 3]), "a.npy"), formatError(/wrong magic/));
    const v9 = good.slice();
    v9[6] = 9;
    assert.throws(() => readNpy(v9, "a.npy"), formatError(/version 9\.0/));
  });

  test("truncated header and data", () => {
    assert.throws(() => readNpy(good.subarray(0, 9), "a.npy"), formatError(/truncated/));
    assert.throws(() => readNpy(good.subarray(0, 40), "a.npy"), formatError(/truncated/));
    assert.throws(
      () => readNpy(good.subarray(0, good.length - 1), "a.npy"),
      formatError(/truncated: data is 63 bytes but shape \(4, 2\) of <i8 needs 64/),
    );
  });

  test("trailing data is a shape mismatch", () => {
    assert.throws(() => readNpy(concat(good, new Uint8Array(8)), "a.npy"), formatError(/needs 64/));
  });

  test("a lying shape fails before allocating", () => {
    const huge = npyBytes("<f8", [1], [1], {
      header: "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 100000000000), }",
    });
    assert.throws(() => readNpy(huge, "a.npy"), formatError(/more than the file can hold|needs/));
    const negative = npyBytes("<f8", [1], [1], {
      header: "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
    });
    assert.throws(() => readNpy(negative, "a.npy"), formatError(/invalid size -1/));
  });

  test("unsupported dtypes and headers", () => {
    const cases: [string, RegExp][] = [
      [
        "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
        /unsupported \.npy dtype "<c16"/,
      ],
      ["{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", /unsupported \.npy dtype/],
      ["{'descr': '<M8[s]', 'fortran_order': False, 'shape': (1,), }", /unsupported \.npy dtype/],
      ["{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", /structured/],
      ["{'descr': '<i4', 'fortran_order': 'no', 'shape': (1,), }", /fortran_order/],
      ["{'descr': '<i4', 'fortran_order': False, 'shape': 5, }", /shape/],
      ["{'descr': '<i4', 'fortran_order': False, 'shape': (1.5,), }", /\.npy header/],
      ["{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", /unexpected key/],
      ["{'descr': '<i4', 'fortran_order': False, 'shape': (1,)", /\.npy header/],
      ["{'descr': '<i4", /unterminated string/],
      [
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        /nested too deeply/,
      ],
      ["__import__('os').system('true')", /unexpected character/],
      [
        "{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
        /too large/,
      ],
    ];
    for (const [header, pattern] of cases) {
      assert.throws(
        () => readNpy(npyBytes("<i4", [1], [0], { header }), "h.npy"),
        formatError(pattern),
        header,
      );
    }
  });

  test("too many dimensions", () => {
    const header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${"1, ".repeat(40)}), }`;
    assert.throws(
      () => readNpy(npyBytes("<i4", [1], [0], { header }), "h.npy"),
      formatError(/40 dimensions/),
    );
  });
});

/**
 * src/io/safetensors.ts: every tensor of a safetensors file read by name with its dtype and
 * shape, or the file refused naming the tensor and the rule (dtype, offsets, sizes, header
 * length), before anything large is allocated.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { readLoads } from "../../src/io/read.js";
import { isSafetensors, readSafetensors } from "../../src/io/safetensors.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";
import { encode, formatError, safetensorsBytes } from "./support.js";

const { file } = tempFiles("eplb-safetensors-");
const text = (s: string) => new TextEncoder().encode(s);

describe("safetensors", () => {
  const trace = encode(
    "int32",
    Array.from({ length: 12 }, (_, i) => i),
  );
  const st = safetensorsBytes(
    [
      { name: "bias", dtype: "F32", shape: [3], data: encode("float32", [1, 2, 3]) },
      { name: "logical_count", dtype: "I32", shape: [2, 2, 3], data: trace },
      { name: "w", dtype: "BF16", shape: [2, 2], data: encode("bfloat16", [1, -2, 0.5, 3]) },
    ],
    { format: "pt" },
  );

  test("reads every tensor by name, in file order, skipping __metadata__", () => {
    const m = readSafetensors(st, "a.safetensors");
    assert.deepEqual([...m.keys()], ["bias", "logical_count", "w"]);
    assert.deepEqual(Array.from(m.get("w")!.data), [1, -2, 0.5, 3]);
    assert.deepEqual(m.get("logical_count")!.shape, [2, 2, 3]);
  });

  test("loads: by well-known name, by key, or the first 2-D/3-D tensor", () => {
    const p = file("a.safetensors", st);
    assert.deepEqual(Array.from(readLoads(p).data), [6, 8, 10, 12, 14, 16]);
    assert.throws(
      () => readLoads(p, { key: "bias" }),
      formatError(/bias has shape \[3\]: expected/),
    );
    const anon = file(
      "b.safetensors",
      safetensorsBytes([
        { name: "bias", dtype: "F64", shape: [2], data: encode("float64", [1, 2]) },
        { name: "something", dtype: "I64", shape: [1, 2], data: encode("int64", [5, 6]) },
      ]),
    );
    assert.deepEqual(Array.from(readLoads(anon).data), [5, 6]);
    assert.throws(() => readLoads(p, { key: "nope" }), formatError(/no tensor named "nope"/));
  });

  test("negative loads from a bf16 tensor are refused with their index", () => {
    assert.throws(
      () => readLoads(file("c.safetensors", st), { key: "w" }),
      formatError(/w\[0\]\[1\] \(-2\) must be finite and >= 0/),
    );
  });

  test("every safetensors dtype", () => {
    const cases: [string, Parameters<typeof encode>[0], number[]][] = [
      ["BOOL", "bool", [0, 1]],
      ["U8", "uint8", [0, 255]],
      ["I8", "int8", [-128, 127]],
      ["U16", "uint16", [0, 65535]],
      ["I16", "int16", [-32768, 32767]],
      ["U32", "uint32", [0, 4294967295]],
      ["I32", "int32", [-5, 5]],
      ["U64", "uint64", [0, 2 ** 53 - 1]],
      ["I64", "int64", [-(2 ** 53), 2 ** 53 - 1]],
      ["F16", "float16", [-1.5, 2048]],
      ["BF16", "bfloat16", [-1.5, 2 ** 40]],
      ["F32", "float32", [-1.5, 2 ** 40]],
      ["F64", "float64", [0.1, -1e300]],
    ];
    for (const [code, dtype, values] of cases) {
      const bytes = safetensorsBytes([
        { name: "x", dtype: code, shape: [2], data: encode(dtype, values) },
      ]);
      assert.deepEqual(Array.from(readSafetensors(bytes, "d").get("x")!.data), values, code);
    }
  });

  test("inconsistent headers", () => {
    const one = (info: unknown, data = new Uint8Array(8)) => {
      const json = JSON.stringify({ x: info });
      const len = new Uint8Array(8);
      new DataView(len.buffer).setUint32(0, json.length, true);
      const out = new Uint8Array(8 + json.length + data.length);
      out.set(len);
      out.set(text(json), 8);
      out.set(data, 8 + json.length);
      return out;
    };
    const cases: [unknown, RegExp][] = [
      [{ dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] }, /unsupported dtype "F8_E4M3"/],
      [
        { dtype: "constructor", shape: [1], data_offsets: [0, 1] },
        /unsupported dtype "constructor"/,
      ],
      [{ dtype: "__proto__", shape: [1], data_offsets: [0, 1] }, /unsupported dtype "__proto__"/],
      [
        { dtype: "I64", shape: [2], data_offsets: [0, 8] },
        /has 8 bytes but shape \[2\] of I64 needs 16/,
      ],
      [{ dtype: "I64", shape: [1], data_offsets: [0, 16] }, /outside the 8-byte data section/],
      [{ dtype: "I64", shape: [1], data_offsets: [8, 0] }, /outside/],
      [{ dtype: "I64", shape: [1], data_offsets: [0] }, /invalid data_offsets/],
      [{ dtype: "I64", shape: [-1], data_offsets: [0, 8] }, /invalid size -1/],
      [{ dtype: "I64", shape: "x", data_offsets: [0, 8] }, /not a list of sizes/],
      ["x", /no dtype\/shape/],
    ];
    for (const [info, pattern] of cases) {
      assert.throws(
        () => readSafetensors(one(info), "h.safetensors"),
        formatError(pattern),
        pattern.source,
      );
    }
    const bad = one({ dtype: "I64", shape: [1], data_offsets: [0, 8] });
    bad[9] = 0x7b; // break the JSON
    assert.throws(() => readSafetensors(bad, "h.safetensors"), formatError(/not valid JSON/));
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(0, 0xffffff00, true);
    assert.throws(() => readSafetensors(huge, "h.safetensors"), formatError(/truncated|100 MB/));
  });
});

describe("readSafetensors: what callers rely on beyond the format", () => {
  const st = safetensorsBytes([
    { name: "b", dtype: "I64", shape: [1], data: encode("int64", [7]) },
    { name: "a", dtype: "F64", shape: [2], data: encode("float64", [1.5, 2.5]) },
  ]);

  test("`only` reads just that tensor, and names what the file has when it is absent", () => {
    const m = readSafetensors(st, "s.safetensors", "a");
    assert.deepEqual([...m.keys()], ["a"]);
    assert.deepEqual(Array.from(m.get("a")!.data), [1.5, 2.5]);
    assertRefused(
      () => readSafetensors(st, "s.safetensors", "nope"),
      EplbFormatError,
      's.safetensors: no tensor named "nope" (has b, a)',
    );
    const empty = safetensorsBytes([]);
    assert.equal(readSafetensors(empty, "e.safetensors").size, 0);
    assertRefused(
      () => readSafetensors(empty, "e.safetensors", "x"),
      EplbFormatError,
      'e.safetensors: no tensor named "x" (has none)',
    );
  });

  test("tensors come in data order, whatever the header's key order", () => {
    const json = JSON.stringify({
      late: { dtype: "U8", shape: [1], data_offsets: [1, 2] },
      early: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
    });
    const bytes = new Uint8Array(8 + json.length + 2);
    new DataView(bytes.buffer).setUint32(0, json.length, true);
    bytes.set(text(json), 8);
    bytes.set([10, 20], 8 + json.length);
    const m = readSafetensors(bytes, "o.safetensors");
    assert.deepEqual([...m.keys()], ["early", "late"]);
    assert.deepEqual(Array.from(m.get("late")!.data), [20]);
  });

  test("a header that is not an object, and one over 100 MB, are refused by rule", () => {
    for (const json of ["[1]", "null", "7"]) {
      const bytes = new Uint8Array(8 + json.length);
      new DataView(bytes.buffer).setUint32(0, json.length, true);
      bytes.set(text(json), 8);
      assertRefused(
        () => readSafetensors(bytes, "h.safetensors"),
        EplbFormatError,
        "h.safetensors: safetensors header is not a JSON object",
      );
    }
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(0, 100_000_001, true);
    assertRefused(
      () => readSafetensors(huge, "h.safetensors"),
      EplbFormatError,
      "h.safetensors: safetensors header of 100000001 bytes is over the 100 MB limit",
    );
  });

  test("every truncation is an EplbFormatError naming the file", () => {
    for (let n = 0; n < st.length; n++) {
      assert.throws(
        () => readSafetensors(st.subarray(0, n), "cut.safetensors"),
        (e: unknown) => e instanceof EplbFormatError && e.file === "cut.safetensors",
        `prefix of ${n} bytes`,
      );
    }
  });
});

describe("isSafetensors", () => {
  test("true for a header length that fits the file followed by '{'", () => {
    assert.equal(isSafetensors(safetensorsBytes([])), true);
    assert.equal(
      isSafetensors(
        safetensorsBytes([{ name: "x", dtype: "U8", shape: [1], data: new Uint8Array(1) }]),
      ),
      true,
    );
  });

  test("false for short files, no '{', a length past the end or over 2^32", () => {
    const ok = safetensorsBytes([{ name: "x", dtype: "U8", shape: [1], data: new Uint8Array(1) }]);
    assert.equal(isSafetensors(ok.subarray(0, 9)), false);
    const noBrace = ok.slice();
    noBrace[8] = 0x20;
    assert.equal(isSafetensors(noBrace), false);
    const past = ok.slice();
    new DataView(past.buffer).setUint32(0, ok.length - 7, true);
    assert.equal(isSafetensors(past), false);
    const fits = ok.slice();
    new DataView(fits.buffer).setUint32(0, ok.length - 8, true);
    assert.equal(isSafetensors(fits), true);
    const high = ok.slice();
    new DataView(high.buffer).setUint32(4, 1, true);
    assert.equal(isSafetensors(high), false);
    const tiny = ok.slice();
    new DataView(tiny.buffer).setUint32(0, 1, true);
    assert.equal(isSafetensors(tiny), false);
    assert.equal(isSafetensors(text('{"not": "safetensors"}')), false);
  });
});

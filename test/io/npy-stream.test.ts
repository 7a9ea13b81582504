import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { loadsFromValue } from "../../src/io/load-values.js";
import { openNpyTrace, readAllSteps } from "../../src/io/npy-stream.js";
import { openTraceStream, parseBytes, readLoads, readTrace } from "../../src/io/read.js";
import { npyBytes } from "./support.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-npy-stream-"));
const formatError = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");

function file(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

// [7 steps, 2 layers, 3 experts] with distinct values: step t, layer l, expert e -> 100t + 10l + e.
const shape = [7, 2, 3];
const values = Array.from({ length: 42 }, (_, i) => {
  const t = Math.floor(i / 6);
  const l = Math.floor((i % 6) / 3);
  return 100 * t + 10 * l + (i % 3);
});

function allSteps(path: string, steps?: string): number[] {
  const source = openNpyTrace(path, { steps });
  assert.ok(source, "streamable");
  try {
    const out = new Float64Array(source.steps * 6 + 1);
    for (let t = 0; t < source.steps; t++) source.readStep(t, out, 1 + t * 6);
    return Array.from(out.subarray(1));
  } finally {
    source.close();
  }
}

describe("openNpyTrace: a .npy trace one step at a time", () => {
  test("every dtype and byte order reads step by step exactly as the whole-file reader", () => {
    for (const descr of ["<i8", ">i8", "<i4", ">u4", "<f4", ">f8", "<u2", "|u1", "<f2"]) {
      const path = file(
        `t${descr.replace(/[<>|]/, "")}-${descr[0] === ">" ? "be" : "le"}.npy`,
        npyBytes(
          descr,
          shape,
          values.map((v) => (descr === "|u1" ? v % 256 : v)),
        ),
      );
      const whole = readTrace(path);
      const source = openNpyTrace(path);
      assert.ok(source);
      assert.deepEqual([source.steps, source.layers, source.experts], [7, 2, 3]);
      source.close();
      assert.deepEqual(allSteps(path), Array.from(whole.data), descr);
    }
  });

  test("a --steps slice selects the same steps as readTrace, strided and from the end", () => {
    const path = file("slice.npy", npyBytes("<i8", shape, values));
    for (const steps of ["2:5", "-3:", "1:7:2", "4", ":2"]) {
      assert.deepEqual(allSteps(path, steps), Array.from(readTrace(path, { steps }).data), steps);
    }
  });

  test("what it does not stream is null: other formats, 2-D arrays, Fortran order", () => {
    assert.equal(openNpyTrace(file("loads.json", new TextEncoder().encode("[[1, 2]]"))), null);
    assert.equal(
      openNpyTrace(file("two-d.npy", npyBytes("<i8", [2, 3], [1, 2, 3, 4, 5, 6]))),
      null,
    );
    const fortran = npyBytes("<i8", shape, values, { fortran: true });
    assert.equal(openNpyTrace(file("fortran.npy", fortran)), null);
  });

  test("bad files are one-line EplbFormatErrors naming the file", () => {
    const good = npyBytes("<i8", shape, values);
    assert.throws(
      () => openNpyTrace(file("short.npy", good.subarray(0, good.length - 8))),
      formatError(
        /short\.npy: truncated: data is \d+ bytes but shape \(7, 2, 3\) of <i8 needs 336/,
      ),
    );
    assert.throws(() => openNpyTrace(join(tmp, "missing.npy")), formatError(/no such file/));
    assert.throws(() => openNpyTrace(tmp), formatError(/is a directory|cannot read/));
    assert.throws(
      () => openNpyTrace(file("empty.npy", npyBytes("<i8", [0, 2, 3], []))),
      formatError(/shape \[0, 2, 3\]: it is empty/),
    );
  });

  test("a negative or non-finite load fails the step that holds it, with its index", () => {
    const bad = [...values];
    bad[4 * 6 + 3 + 2] = -5; // step 4, layer 1, expert 2
    const source = openNpyTrace(file("negative.npy", npyBytes("<f8", shape, bad)));
    assert.ok(source);
    const out = new Float64Array(6);
    source.readStep(3, out, 0);
    assert.throws(
      () => source.readStep(4, out, 0),
      formatError(/negative\.npy: loads\[4\]\[1\]\[2\] \(-5\) must be finite and >= 0/),
    );
    source.close();
    assert.throws(() => source.readStep(0, out, 0), /read after close/);
  });

  test("readAllSteps keeps counts as int32 and widens to float64 when they do not fit", () => {
    const counts = readAllSteps(openNpyTrace(file("counts.npy", npyBytes("<i8", shape, values)))!);
    assert.ok(counts.data instanceof Int32Array);
    assert.deepEqual(Array.from(counts.data), values);
    assert.ok(!(counts.data.buffer instanceof SharedArrayBuffer));
    const shared = readAllSteps(openNpyTrace(join(tmp, "counts.npy"))!, { shared: true });
    assert.ok(shared.data instanceof Int32Array && shared.data.buffer instanceof SharedArrayBuffer);
    assert.deepEqual(Array.from(shared.data), values);
    const big = [...values];
    big[40] = 2 ** 40;
    const wide = readAllSteps(openNpyTrace(file("big.npy", npyBytes("<i8", shape, big)))!);
    assert.ok(wide.data instanceof Float64Array);
    assert.deepEqual(Array.from(wide.data), big);
    const floats = readAllSteps(openNpyTrace(file("floats.npy", npyBytes("<f4", shape, values)))!);
    assert.ok(floats.data instanceof Float64Array);
    assert.deepEqual(Array.from(floats.data), values);
  });
});

describe("readLoads of a .npy trace sums the selected steps one at a time", () => {
  test("the same loads as summing the whole file, for every slice", () => {
    const floats = values.map((v) => v / 7);
    const path = file("sum.npy", npyBytes("<f8", shape, floats));
    const { value } = parseBytes(readFileSync(path), { fileName: path });
    for (const steps of [undefined, "2:5", "-3:", "1:7:2", "4"]) {
      const whole = loadsFromValue(value, path, { steps, limit: 1e9 });
      assert.deepEqual(readLoads(path, { steps }), whole, String(steps));
    }
  });
});

describe("openNpyTrace on damaged files", () => {
  test("every prefix of a trace file, and random byte flips, give data, null or an EplbFormatError", () => {
    const good = npyBytes("<i8", shape, values);
    const path = join(tmp, "damaged.npy");
    const readAll = (): void => {
      const source = openNpyTrace(path);
      if (!source) return;
      try {
        const out = new Float64Array(source.layers * source.experts);
        for (let t = 0; t < source.steps; t++) source.readStep(t, out, 0);
      } finally {
        source.close();
      }
    };
    const check = (bytes: Uint8Array, what: string): void => {
      writeFileSync(path, bytes);
      try {
        readAll();
      } catch (e) {
        assert.ok(e instanceof EplbFormatError, `${what}: ${String(e)}`);
        assert.ok(!e.message.includes("\n"), what);
      }
    };
    for (let n = 0; n <= good.length; n++) check(good.subarray(0, n), `prefix ${n}`);
    let seed = 20261129;
    for (let i = 0; i < 400; i++) {
      const bytes = good.slice();
      for (let k = 0; k < 3; k++) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        const at = seed % Math.min(bytes.length, 160); // mostly the header
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        bytes[at] = seed & 0xff;
      }
      check(bytes, `flip ${i}`);
    }
  });
});

describe("openTraceStream: which read options may stream", () => {
  test("a .npy trace streams unless a key, a slot placement or another format is asked for", () => {
    const path = file("options.npy", npyBytes("<i8", shape, values));
    const source = openTraceStream(path, { steps: "1:3" });
    assert.ok(source);
    assert.equal(source.steps, 2);
    source.close();
    const npy = openTraceStream(path, { format: "npy" });
    assert.ok(npy);
    npy.close();
    assert.equal(openTraceStream(path, { key: "loads" }), null);
    assert.equal(openTraceStream(path, { slotPlacement: "p.json" }), null);
    assert.equal(openTraceStream(path, { format: "json" }), null);
  });
});

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { placementFromValue } from "../../src/io/interpret.js";
import { loadsFromValue, traceFromValue } from "../../src/io/load-values.js";
import {
  parseBytes,
  readLoads,
  readPlacement,
  readTensorFile,
  readTrace,
  readValue,
} from "../../src/io/read.js";
import { isTensor } from "../../src/io/tensor.js";
import { FIXTURES, fixturesDir } from "./support.js";

const dir = fixturesDir();
const path = (name: string) => join(dir, name);

/** The reference: hotness.json's `{"shape": [16, 4, 16], "counts": nested}`, read naively. */
function reference(): { trace: number[]; loads: number[] } {
  const json = JSON.parse(readFileSync(path("hotness.json"), "utf8")) as {
    shape: number[];
    counts: number[][][];
  };
  assert.deepEqual(json.shape, [16, 4, 16]);
  const trace = json.counts.flat(2);
  const loads = new Array<number>(64).fill(0);
  for (let t = 0; t < 16; t++) for (let i = 0; i < 64; i++) loads[i] += trace[t * 64 + i];
  return { trace, loads };
}

const ref = reference();

describe("shared fixtures", () => {
  for (const name of FIXTURES) {
    if (name === "sglang-init-p2l.pt") continue;
    test(`${name} reads to the same loads as hotness.json`, () => {
      const m = readLoads(path(name));
      assert.equal(m.layers, 4);
      assert.equal(m.experts, 16);
      assert.deepEqual(Array.from(m.data), ref.loads);
    });
  }

  for (const name of [
    "hotness-float32.npy",
    "hotness-float64-fortran.npy",
    "hotness-int64.npy",
    "hotness.json",
    "sglang-stat-dump-int32.pt",
    "sglang-stat-dump-int64.pt",
  ]) {
    test(`${name} reads as the same 16-step trace`, () => {
      // An SGLang stat dump's rows are a ring buffer: a trace only when the user says so by key.
      const key = name.startsWith("sglang-stat") ? "logical_count" : undefined;
      const t = readTrace(path(name), { key });
      assert.deepEqual([t.steps, t.layers, t.experts], [16, 4, 16]);
      assert.deepEqual(Array.from(t.data), ref.trace);
    });
  }

  test("2-D fixtures read as one-step traces", () => {
    const t = readTrace(path("loads-2d-float64.npy"));
    assert.equal(t.steps, 1);
    assert.deepEqual(Array.from(t.data), ref.loads);
  });

  test("int32 and int64 recorder dumps agree, with their scalar fields", () => {
    const a = readValue(path("sglang-stat-dump-int32.pt")).value as Record<string, unknown>;
    const b = readValue(path("sglang-stat-dump-int64.pt")).value as Record<string, unknown>;
    assert.equal(a.rank, 0);
    assert.equal(a.average_utilization_rate_over_window, 0.83);
    assert.equal(b.average_utilization_rate_over_window, null);
    assert.ok(isTensor(a.logical_count) && isTensor(b.logical_count));
    assert.equal(a.logical_count.dtype, "int32");
    assert.equal(b.logical_count.dtype, "int64");
    assert.deepEqual(a.logical_count.shape, [16, 4, 16]);
    assert.deepEqual(Array.from(a.logical_count.data), Array.from(b.logical_count.data));
  });

  test("sglang-init-p2l.pt reads as a placement", () => {
    const p = readPlacement(path("sglang-init-p2l.pt"));
    assert.equal(p.layers, 4);
    assert.equal(p.numReplicas, 20);
    assert.equal(p.numExperts, 16);
    for (let l = 0; l < 4; l++) {
      let slots = 0;
      for (let e = 0; e < 16; e++) slots += p.logcnt[l * 16 + e];
      assert.equal(slots, 20);
    }
    // More experts than the map uses leaves some without a slot: a clear format error.
    assert.throws(
      () => readPlacement(path("sglang-init-p2l.pt"), { numExperts: 18 }),
      (e: unknown) => e instanceof EplbFormatError && /expert 16.*has no replica/.test(e.message),
    );
    const keyed = readPlacement(path("sglang-init-p2l.pt"), { key: "physical_to_logical_map" });
    assert.deepEqual(Array.from(keyed.phy2log), Array.from(p.phy2log));
  });

  test("readTensorFile tells placements, loads and traces apart", () => {
    assert.equal(readTensorFile(path("sglang-init-p2l.pt")).kind, "placement");
    assert.equal(readTensorFile(path("loads-2d-float64.npy")).kind, "loads");
    assert.equal(readTensorFile(path("sglang-init-logical-count.pt")).kind, "loads");
    assert.equal(readTensorFile(path("hotness-int64.npy")).kind, "trace");
    // A stat dump's ring buffer is no trace: its loads, all rows summed.
    const t = readTensorFile(path("sglang-stat-dump-int64.pt"));
    assert.equal(t.kind, "loads");
    assert.equal(t.format, "pt");
  });

  test("steps slices select the same steps from every trace format", () => {
    const expected = new Array<number>(64).fill(0);
    for (let t = 12; t < 16; t++) for (let i = 0; i < 64; i++) expected[i] += ref.trace[t * 64 + i];
    for (const name of ["hotness-int64.npy", "hotness.json", "sglang-stat-dump-int32.pt"]) {
      const key = name.startsWith("sglang-stat") ? "logical_count" : undefined;
      assert.deepEqual(Array.from(readLoads(path(name), { steps: "-4:", key }).data), expected);
      assert.deepEqual(Array.from(readLoads(path(name), { steps: "12:100", key }).data), expected);
    }
    const even = readTrace(path("hotness-float32.npy"), { steps: "::2" });
    assert.equal(even.steps, 8);
    assert.deepEqual(Array.from(even.data.subarray(64, 128)), ref.trace.slice(128, 192));
  });

  test("every prefix of every fixture parses or fails with EplbFormatError", () => {
    let failures = 0;
    let parses = 0;
    for (const name of FIXTURES) {
      const bytes = readFileSync(path(name));
      for (let n = 0; n < bytes.length; n++) {
        const prefix = bytes.subarray(0, n);
        try {
          const { value } = parseBytes(prefix, { fileName: name });
          parses++;
          loadsFromValue(value, name, { limit: n });
        } catch (error) {
          if (!(error instanceof EplbFormatError))
            assert.fail(`${name}[0:${n}] threw ${String(error)}`);
          assert.ok(!error.message.includes("\n"), "one-line message");
          failures++;
        }
      }
    }
    // JSON prefixes and most binary prefixes must fail; a few complete-looking ones may parse.
    assert.ok(failures > parses);
  });

  test("trace and placement interpretation of truncated fixtures never escapes", () => {
    for (const name of ["sglang-init-p2l.pt", "sglang-stat-dump-int64.pt"]) {
      const bytes = readFileSync(path(name));
      for (let n = bytes.length - 200; n < bytes.length; n++) {
        try {
          const { value } = parseBytes(bytes.subarray(0, n), { fileName: name });
          placementFromValue(value, name, { limit: n });
          traceFromValue(value, name, { limit: n });
        } catch (error) {
          assert.ok(error instanceof EplbFormatError, String(error));
        }
      }
    }
  });
});

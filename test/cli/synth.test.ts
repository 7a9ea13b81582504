import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { synthesizeTrace } from "../../src/index.js";
import { readNpy } from "../../src/io/npy.js";
import { encodeNpy, NpyWriter, npyHeader, writeNpy } from "../../src/io/npy-write.js";
import { readTrace } from "../../src/io/read.js";
import { cli, sharedDir } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-synth-"));

describe("npy writer", () => {
  const hotness = JSON.parse(readFileSync(join(sharedDir, "fixtures", "hotness.json"), "utf8"));
  const counts: number[] = hotness.counts.flat(2);

  test("writes byte for byte what numpy.save writes (int64 and float32 fixtures)", () => {
    for (const [dtype, file] of [
      ["int64", "hotness-int64.npy"],
      ["float32", "hotness-float32.npy"],
    ] as const) {
      const expected = new Uint8Array(readFileSync(join(sharedDir, "fixtures", file)));
      assert.deepEqual(encodeNpy(counts, hotness.shape, dtype), expected, file);
    }
  });

  test("headers are version 1.0, padded so data starts on a 64-byte boundary", () => {
    for (const shape of [[3], [2, 3], [10000, 58, 256], []]) {
      const h = npyHeader("float64", shape);
      assert.equal(h.length % 64, 0);
      assert.deepEqual(Array.from(h.subarray(0, 8)), [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      assert.equal(h[h.length - 1], 0x0a);
    }
    assert.match(new TextDecoder().decode(npyHeader("int64", [5])), /'shape': \(5,\)/);
  });

  test("a streamed file reads back through the .npy reader, negative int64 included", () => {
    const path = join(tmp, "stream.npy");
    const w = new NpyWriter(path, "int64", [2, 1, 3]);
    w.write([1, -2, 3]);
    w.write([2 ** 40, 0, -(2 ** 40) - 7]);
    w.close();
    const t = readNpy(readFileSync(path), path);
    assert.equal(t.dtype, "int64");
    assert.deepEqual(t.shape, [2, 1, 3]);
    assert.deepEqual(Array.from(t.data), [1, -2, 3, 2 ** 40, 0, -(2 ** 40) - 7]);
    writeNpy(join(tmp, "f64.npy"), [0.5, 1.25], [1, 1, 2], "float64");
    assert.deepEqual(Array.from(readTrace(join(tmp, "f64.npy")).data), [0.5, 1.25]);
  });

  test("a wrong count or a non-integer int64 is an error", () => {
    assert.throws(() => encodeNpy([1, 2], [3], "float64"), /values\.length \(2\)/);
    assert.throws(() => encodeNpy([1.5], [1], "int64"), /must be a safe integer/);
    const w = new NpyWriter(join(tmp, "short.npy"), "float32", [4]);
    w.write([1, 2]);
    assert.throws(() => w.close(), /must total the shape's 4 elements/);
  });
});

describe("eplb synth", () => {
  test("writes the seeded trace as .npy and says it is synthetic", async () => {
    const out = join(tmp, "trace.npy");
    const r = await cli([
      "synth",
      "--steps",
      "60",
      "--layers",
      "3",
      "--experts",
      "8",
      "--seed",
      "4",
      "--drift",
      "0.02",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*trace\.npy \[60, 3, 8\] int64/);
    assert.match(r.stdout, /SYNTHETIC trace/);
    const read = readTrace(out);
    const expected = synthesizeTrace({ steps: 60, layers: 3, experts: 8, seed: 4, drift: 0.02 });
    assert.deepEqual(Array.from(read.data), Array.from(expected.data));
  });

  test("--dtype float32 writes '<f4' elements; defaults give about --tokens per layer and step", async () => {
    const out = join(tmp, "f32.npy");
    const r = await cli(
      ["synth", "--steps", "5", "--layers", "2", "--experts", "4", "--tokens", "1000"].concat([
        "--dtype",
        "float32",
        "--out",
        out,
      ]),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(out).subarray(0, 64).toString("latin1"), /'descr': '<f4'/);
    const t = readTrace(out);
    const total = Array.from(t.data).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total / 10 - 1000) < 150, String(total));
  });

  test("mistakes exit 2 with one line and write nothing on stdout", async () => {
    for (const argv of [
      ["synth", "--steps", "5", "--layers", "2", "--experts", "4"],
      ["synth", "--steps", "0", "--layers", "2", "--experts", "4", "--out", join(tmp, "x.npy")],
      ["synth", "--steps", "5", "--layers", "2", "--experts", "4", "--dtype", "int8", "--out", "x"],
      ["synth", "--steps", "5", "--layers", "2", "--experts", "4", "--sigma", "-1", "--out", "x"],
      [
        "synth",
        "--steps",
        "5",
        "--layers",
        "2",
        "--experts",
        "4",
        "--out",
        join(tmp, "no/such/dir.npy"),
      ],
    ]) {
      const r = await cli(argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /^eplb synth: /);
    }
  });
});

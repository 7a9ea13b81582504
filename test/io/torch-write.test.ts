import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { placementFromPhy2log } from "../../src/index.js";
import { readPlacement } from "../../src/io/read.js";
import { readTorch } from "../../src/io/torch.js";
import { torchSaveInt64 } from "../../src/io/torch-write.js";
import { sglangPlacementTorch } from "../../src/io/writers.js";
import { sharedDir } from "../helpers/cli.js";
import { localEntries } from "./support.js";
import { sglangLoad } from "./writers-engine-loaders.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-torch-write-"));

describe("torchSaveInt64 / sglangPlacementTorch: a torch.save file", () => {
  const p = placementFromPhy2log(
    [
      [0, 1, 2, 0],
      [2, 2, 1, 0],
    ],
    3,
  );

  test("the archive torch writes: data.pkl, byteorder, data/0, version, aligned and checked", () => {
    const bytes = sglangPlacementTorch(p);
    const { entries } = localEntries(bytes);
    assert.deepEqual(
      entries.map((e) => e.name),
      ["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"],
    );
    const text = (name: string) => {
      const e = entries.find((x) => x.name === name)!;
      return new TextDecoder("latin1").decode(bytes.subarray(e.dataAt, e.dataAt + e.size));
    };
    assert.equal(text("archive/byteorder"), "little");
    assert.equal(text("archive/version"), "3\n");
    const storage = entries.find((e) => e.name === "archive/data/0")!;
    assert.equal(storage.size, 8 * 8);
    assert.equal(storage.dataAt % 64, 0);
    const view = new DataView(bytes.buffer, bytes.byteOffset + storage.dataAt, storage.size);
    const values = Array.from({ length: 8 }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    assert.deepEqual(values, [0, 1, 2, 0, 2, 2, 1, 0]);
    const pkl = text("archive/data.pkl");
    assert.ok(pkl.startsWith("\x80\x02"), "pickle protocol 2");
    // Only globals torch.load(weights_only=True) allows are named.
    for (const g of [
      "ctorch._utils\n_rebuild_tensor_v2\n",
      "ctorch\nLongStorage\n",
      "ccollections\nOrderedDict\n",
    ]) {
      assert.ok(pkl.includes(g), g);
    }
    // No other GLOBAL: every newline of this pickle (no 0x0a among its numbers) is one of theirs.
    assert.equal(pkl.split("\n").length - 1, 6);
  });

  test("eplb's torch reader reads back the dict with the int64 tensor, exactly", () => {
    const value = readTorch(sglangPlacementTorch(p), "init.pt") as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ["physical_to_logical_map"]);
    const t = value.physical_to_logical_map as {
      dtype: string;
      shape: number[];
      data: Float64Array;
    };
    assert.equal(t.dtype, "int64");
    assert.deepEqual(t.shape, [2, 4]);
    assert.deepEqual(Array.from(t.data), Array.from(p.phy2log));
    // SGLang's init_by_mapping checks, re-expressed, accept it.
    sglangLoad(value, { layers: 2, experts: 3, gpus: 2, slots: 4 });
  });

  test("random placements round-trip through a .pt file", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        (layers, experts, extra, seed) => {
          let s = seed >>> 0;
          const rows = Array.from({ length: layers }, () =>
            Array.from({ length: experts + extra }, (_, i) => {
              s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
              return i < experts ? i : s % experts;
            }),
          );
          const q = placementFromPhy2log(rows, experts);
          const path = join(tmp, "p.pt");
          writeFileSync(path, sglangPlacementTorch(q));
          const back = readPlacement(path, { numExperts: experts });
          assert.deepEqual(Array.from(back.phy2log), Array.from(q.phy2log));
        },
      ),
      { numRuns: 50 },
    );
  });

  test("a file torch itself saved, re-saved by eplb, reads back identical", () => {
    const fixture = readFileSync(join(sharedDir, "fixtures", "sglang-init-p2l.pt"));
    const source = readTorch(fixture, "sglang-init-p2l.pt") as Record<string, unknown>;
    const t = source.physical_to_logical_map as { shape: number[]; data: Float64Array };
    const again = readTorch(
      torchSaveInt64({ physical_to_logical_map: { shape: t.shape, data: t.data } }),
      "again.pt",
    );
    assert.deepEqual(again, source);
  });

  test("several tensors, large and negative values, BININT sizes", () => {
    const big = Array.from({ length: 70000 }, (_, i) => i);
    const bytes = torchSaveInt64({
      a: { shape: [700, 100], data: big },
      b: { shape: [3], data: [-1, 2 ** 40, 7] },
      c: { shape: [0, 2], data: [] },
    });
    const v = readTorch(bytes, "x.pt") as Record<string, { shape: number[]; data: Float64Array }>;
    assert.deepEqual(v.a.shape, [700, 100]);
    assert.equal(v.a.data[69999], 69999);
    assert.deepEqual(Array.from(v.b.data), [-1, 2 ** 40, 7]);
    assert.deepEqual(v.c.shape, [0, 2]);
  });

  test("refuses data that does not match its shape, and non-integers", () => {
    assert.throws(
      () => torchSaveInt64({ m: { shape: [2, 2], data: [1, 2, 3] } }),
      /m\.shape \("\[2, 2\]"\) must be non-negative integers whose product is the element count \(3\)/,
    );
    assert.throws(() => torchSaveInt64({ m: { shape: [1], data: [0.5] } }), /m\[0\] \(0\.5\)/);
  });
});

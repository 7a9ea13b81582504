/**
 * Issue 13, the readers' side: bombs refused before anything is inflated or allocated, every
 * reader error an EplbFormatError, integers beyond 2^53 refused in every text format, loads whose
 * sum overflows refused, unaligned data (other writers' files) read correctly, duplicate zip
 * entries refused, a CSV line bounded.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { readCsv } from "../../src/io/csv.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { readJson } from "../../src/io/json.js";
import { asFormatError, readLoads, readPlacement } from "../../src/io/read.js";
import { readTorch } from "../../src/io/torch.js";
import { readYaml } from "../../src/io/yaml.js";
import { openZip } from "../../src/io/zip.js";
import { tempFiles } from "../helpers/temp.js";
import {
  int64DictPickle,
  npyHugeShape,
  ptAuxiliaryBomb,
  ptDeflateBomb,
  ptHugeShape,
  ptPickleBomb,
  safetensorsHugeShape,
} from "./bombs.js";
import { concat, encode, formatError, torchBytes, torchDictOfTensor, zipBytes } from "./support.js";

const text = (s: string) => new TextEncoder().encode(s);

const { file } = tempFiles("eplb-hostile-io-");

describe("decompression bombs and huge shapes (items 1, 2)", () => {
  test("a 1 MB .pt inflating to 1 GB as [1000, 1000000] is refused before inflating", () => {
    const bomb = ptDeflateBomb(1024, [1000, 1_000_000]);
    assert.ok(bomb.length < 1.2e6);
    assert.throws(() => readLoads(file("bomb.pt", bomb)), formatError(/1000000000 elements/));
  });

  test("a storage beyond the inflate budget is refused whatever views it", () => {
    assert.throws(
      () => readTorch(ptDeflateBomb(128, [128, 1_048_576], 8), "b.pt"),
      formatError(/would inflate to 134217728 bytes, beyond the 67108864/),
    );
  });

  test("many views of one inflated storage are bounded by the element budget", () => {
    assert.throws(
      () => readTorch(ptDeflateBomb(4, [64, 65536], 8), "b.pt"),
      formatError(/more tensor elements than the archive holds/),
    );
  });

  test("an auxiliary entry (byteorder) of 600 MB is refused before inflating", () => {
    assert.throws(
      () => readTorch(ptAuxiliaryBomb(600), "b.pt"),
      formatError(/"bomb\/byteorder" declares 629145600 bytes, at most 16 expected/),
    );
  });

  test("huge declared shapes are refused before allocating", () => {
    assert.throws(() => readTorch(ptHugeShape([1e6, 1e6]), "b.pt"), formatError(/elements/));
    assert.throws(
      () => readLoads(file("h.npy", npyHugeShape([1e9, 1e6]))),
      formatError(/needs 8000000000000000/),
    );
    assert.throws(
      () => readLoads(file("h.safetensors", safetensorsHugeShape([1e9, 1e6]))),
      formatError(/elements, more than the 268435456 eplb reads whole/),
    );
  });

  test("loads beyond the largest shape are refused by the readers", () => {
    const wide = `${Array(70000).fill(1).join(",")}\n`;
    assert.throws(() => readLoads(file("wide.csv", wide)), formatError(/more than 65536 columns/));
    const deep = JSON.stringify(Array.from({ length: 5000 }, () => [1]));
    assert.throws(
      () => readLoads(file("deep.json", deep)),
      formatError(/5000 layers x 1 experts: beyond the largest shape/),
    );
  });
});

describe("pickle bombs", () => {
  test("a compressed data.pkl is capped before inflating", () => {
    assert.throws(
      () => readTorch(ptPickleBomb([0x4b, 1], 9 * 1024 * 1024, true), "p.pt"),
      formatError(/"bomb\/data.pkl" declares 18874374 bytes, at most 16777216 expected/),
    );
  });

  test("a pickle making more than 2^20 containers is refused", () => {
    assert.throws(
      () => readTorch(ptPickleBomb([0x7d], 1_100_000, false), "p.pt"),
      formatError(/more than 1048576 lists, tuples, dicts and objects/),
    );
  });
});

describe("every reader error is an EplbFormatError (item 2)", () => {
  test("whatever its class", () => {
    const tooLong = Object.assign(new Error("Cannot create a string longer than 0x1fffffe8"), {
      code: "ERR_STRING_TOO_LONG",
    });
    for (const error of [tooLong, new RangeError("Array buffer allocation failed"), "text"]) {
      const e = asFormatError(error, "x.pt");
      assert.ok(e instanceof EplbFormatError);
      assert.match(e.message, /^x\.pt: cannot be read: /);
    }
    // Errors meant for the caller pass through.
    const input = new EplbInputError("steps", "x", "must be a slice");
    assert.equal(asFormatError(input, "x.pt"), input);
  });
});

describe("values (items 6, 7)", () => {
  test("loads whose sum overflows are refused by the readers and the library", () => {
    assert.throws(
      () => readLoads(file("o.json", "[[1e308, 1e308, 1e308, 1e308]]")),
      formatError(/sums to Infinity/),
    );
    assert.throws(
      () => rebalanceExperts([[1e308, 1e308, 1e308, 1e308]], 4, 1, 1, 2),
      (e: unknown) => e instanceof EplbInputError && /sum of weight/.test(e.message),
    );
  });

  test("JSON integers beyond 2^53 are refused; floats and 2^53 - 1 are not", () => {
    assert.throws(
      () => readJson(text("[[9007199254740993, 1]]"), "x.json"),
      formatError(/integer 9007199254740993 at character 2 is beyond \+-2\^53/),
    );
    assert.throws(
      () => readJson(text('{"a": [-99999999999999999999]}'), "x.json"),
      formatError(/2\^53/),
    );
    assert.deepEqual(readJson(text('[9007199254740991, 1e20, 1.5, "99999999999999999999"]'), "x"), [
      9007199254740991,
      1e20,
      1.5,
      "99999999999999999999",
    ]);
  });

  test("CSV and YAML integers beyond 2^53 are refused", () => {
    assert.throws(
      () => readCsv(text("1,9007199254740993\n"), "x.csv"),
      formatError(/line 1 column 2: integer "9007199254740993" is beyond/),
    );
    assert.throws(
      () => readYaml(text("x: 99999999999999999999\n"), "x.yaml"),
      formatError(/YAML line 1: integer "99999999999999999999" is beyond/),
    );
    const trtllm = "num_slots: 2\ninitial_global_assignments:\n  99999999999999999999: [0, 1]\n";
    assert.throws(() => readPlacement(file("t.yaml", trtllm)), formatError(/2\^53/));
    const twice = "num_slots: 2\ninitial_global_assignments:\n  1: [0, 1]\n  +1: [1, 0]\n";
    assert.throws(() => readPlacement(file("t.yaml", twice)), formatError(/key "1" appears twice/));
    const json = '{"num_slots": 2, "initial_global_assignments": {"1": [0, 1], "01": [1, 0]}}';
    assert.throws(() => readPlacement(file("t.json", json)), formatError(/names layer 1 twice/));
  });
});

describe("unaligned data from other writers (item 8)", () => {
  const values = [1.5, 2, 3.25, 4];

  test(".npy with an unpadded header", () => {
    const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n";
    assert.notEqual((10 + header.length) % 8, 0, "the data really is unaligned");
    const prefix = new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]);
    const bytes = concat(prefix, text(header), encode("float64", values));
    // readLoads reads with readFileSync: a Buffer, whose slice() is a view.
    assert.deepEqual(Array.from(readLoads(file("u.npy", bytes)).data), values);
  });

  test("safetensors with an unpadded header and odd offsets", () => {
    const head = JSON.stringify({
      pad: { dtype: "U8", shape: [3], data_offsets: [0, 3] },
      weight: { dtype: "F64", shape: [2, 2], data_offsets: [3, 35] },
    });
    assert.notEqual((8 + head.length + 3) % 8, 0);
    const len = new Uint8Array(8);
    new DataView(len.buffer).setUint32(0, head.length, true);
    const bytes = concat(len, text(head), new Uint8Array([7, 7, 7]), encode("float64", values));
    const loads = readLoads(file("u.safetensors", bytes), { key: "weight" });
    assert.deepEqual(Array.from(loads.data), values);
  });

  test("a .pt zipped without torch's 64-byte alignment (Python's zipfile)", () => {
    // Grow the archive name until the storage's data starts off an 8-byte boundary.
    for (let name = "a"; ; name += "a") {
      const bytes = torchDictOfTensor(
        "weight",
        "DoubleStorage",
        encode("float64", values),
        4,
        { offset: 0, size: [2, 2], stride: [2, 1] },
        { deflate: false },
      );
      const plain = zipBytes(
        [...openZip(bytes, "x").entries.values()].map((e) => ({
          name: e.name.replace(/^archive/, name),
          data: openZip(bytes, "x").read(e).slice(),
        })),
      );
      const zip = openZip(plain, "x");
      const entry = zip.entries.get(`${name}/data/0`)!;
      if ((entry.localOffset + 30 + entry.name.length) % 8 === 0) continue;
      assert.deepEqual(Array.from(readLoads(file("u.pt", plain)).data), values);
      break;
    }
  });
});

describe("duplicate zip entry names (item 9)", () => {
  test("are refused: readers disagree on which copy counts", () => {
    const pickle = int64DictPickle("weight", 2, [1, 2], [2, 1]);
    const archive = zipBytes([
      { name: "a/data.pkl", data: pickle },
      { name: "a/data/0", data: encode("int64", [1, 2]) },
      { name: "a/data/0", data: encode("int64", [3, 4]) },
    ]);
    assert.throws(
      () => readTorch(archive, "d.pt"),
      formatError(/zip entry "a\/data\/0" appears twice/),
    );
    // The honest archive reads.
    assert.ok(readTorch(torchBytes(pickle, { "0": encode("int64", [1, 2]) }), "ok.pt"));
  });
});

describe("CSV bounded (item 5)", () => {
  test("a long single line is refused once its columns pass the limit", () => {
    const line = text("1,".repeat(1_000_000));
    assert.throws(() => readCsv(line, "long.csv"), formatError(/more than 65536 columns/));
  });

  test("a huge cell is not decoded whole", () => {
    const cell = text(`1,2\n${"9".repeat(5_000_000)},3\n`);
    assert.throws(
      () => readCsv(cell, "cell.csv"),
      formatError(/line 2 column 1: "9{20,}.*" is not a number/),
    );
  });
});

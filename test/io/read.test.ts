/**
 * src/io/read.ts: the entry point of every input file. Its format is found from magic bytes
 * before the extension (a misnamed file is still read as what it is), the right reader runs,
 * and whatever goes wrong reaches the caller as one EplbFormatError naming the file.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { encodeNpy } from "../../src/io/npy-write.js";
import {
  asFormatError,
  detectFormat,
  FILE_FORMATS,
  openTraceStream,
  parseBytes,
  readLoads,
  readPlacement,
  readTensorFile,
  readTrace,
  readValue,
} from "../../src/io/read.js";
import { writeStoredZip } from "../../src/io/zip-write.js";
import { repoRoot } from "../helpers/cli.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";
import { encode, formatError, npyBytes, safetensorsBytes, torchDictOfTensor } from "./support.js";

const { dir, file } = tempFiles("eplb-read-");
const text = (s: string) => new TextEncoder().encode(s);

describe("dispatch", () => {
  test("magic beats the extension; the extension decides text formats", () => {
    assert.equal(detectFormat(npyBytes("<i8", [1], [1]), "x.json"), "npy");
    assert.equal(detectFormat(text('{"a": 1}'), "x.csv"), "json");
    assert.equal(detectFormat(text("1,2\n"), "x.csv"), "csv");
    assert.equal(detectFormat(text("num_slots: 4\n"), "x.yml"), "yaml");
    assert.equal(detectFormat(text("num_slots: 4\n"), "noext"), "yaml");
    assert.equal(detectFormat(text("1,2\n3,4\n"), "noext"), "csv");
    const st = safetensorsBytes([
      { name: "x", dtype: "I64", shape: [1], data: encode("int64", [1]) },
    ]);
    assert.equal(detectFormat(st, "x.pt"), "safetensors");
    const pt = torchDictOfTensor("t", "LongStorage", encode("int64", [1]), 1, {
      offset: 0,
      size: [1],
      stride: [1],
    });
    assert.equal(detectFormat(pt, "x.npy"), "pt");
    // A safetensors header length whose low byte is '{' is still safetensors.
    let json = JSON.stringify({ x: { dtype: "U8", shape: [1], data_offsets: [0, 1] } });
    while (json.length < 123) json += " ";
    const tricky = new Uint8Array(8 + 123 + 1);
    tricky[0] = 123;
    tricky.set(text(json), 8);
    assert.equal(detectFormat(tricky, "x"), "safetensors");
  });

  test("format can be forced, and a wrong forced format fails cleanly", () => {
    const p = file("loads.txt", "1,2\n3,4\n");
    assert.deepEqual(Array.from(readLoads(p, { format: "csv" }).data), [1, 2, 3, 4]);
    assert.throws(() => readLoads(p, { format: "npy" }), formatError(/wrong magic/));
    assert.throws(() => readLoads(p, { format: "pt" }), formatError(/not a zip archive/));
    assert.throws(
      () => readLoads(p, { format: "safetensors" }),
      formatError(/truncated|safetensors/),
    );
    assert.deepEqual(readValue(p, { format: "csv" }).format, "csv");
  });

  test("missing files and directories are format errors naming the path", () => {
    assert.throws(
      () => readLoads(join(dir, "missing.npy")),
      formatError(/missing\.npy: no such file/),
    );
    const sub = join(dir, "sub");
    mkdirSync(sub);
    assert.throws(() => readLoads(sub), formatError(/is a directory/));
  });

  test("parseBytes names the input", () => {
    assert.throws(() => parseBytes(text("[1,"), {}), formatError(/^<input>: invalid JSON/));
  });
});

describe("detectFormat: the rest of the rules", () => {
  test("every extension, in any case, for bytes with no magic", () => {
    const csv = text("1,2\n");
    const cases: [string, string][] = [
      ["a.pt", "pt"],
      ["a.PTH", "pt"],
      ["a.bin", "pt"],
      ["a.NPY", "npy"],
      ["a.npz", "npz"],
      ["a.safetensors", "safetensors"],
      ["a.json", "json"],
      ["a.Csv", "csv"],
      ["a.yaml", "yaml"],
      ["a.YML", "yaml"],
      ["a.txt", "csv"],
      ["a.constructor", "csv"],
    ];
    for (const [name, format] of cases) assert.equal(detectFormat(csv, name), format, name);
  });

  test("a zip of .npy members is npz whatever its name; a broken zip only by its name", () => {
    const npz = writeStoredZip([{ name: "a.npy", data: encodeNpy([1, 2], [2], "int64") }]);
    assert.equal(detectFormat(npz, "x.pt"), "npz");
    const broken = text("PK\x03\x04 and nothing else");
    assert.equal(detectFormat(broken, "x.npz"), "npz");
    assert.equal(detectFormat(broken, "x.bin"), "pt");
  });

  test("JSON by its first character, YAML by a `key:` line when the name says nothing", () => {
    assert.equal(detectFormat(text("  [[1, 2]]"), "x.yaml"), "json");
    assert.equal(detectFormat(text("# comment\nnum_slots: 4\n"), "x"), "yaml");
    assert.equal(detectFormat(text("layer_id,expert_id,count\n"), "x"), "csv");
  });
});

describe("parseBytes and readValue", () => {
  test("each format's value, and the long CSV as {layer_ids, counts}", () => {
    assert.equal(parseBytes(text("a: [1]\n"), { fileName: "c.yaml" }).format, "yaml");
    const long = parseBytes(text("layer_id,expert_id,count\n3,1,5\n"), { fileName: "d.csv" });
    assert.equal(long.format, "csv");
    assert.deepEqual(Object.keys(long.value as object), ["layer_ids", "counts"]);
    const npy = readValue(file("t.npy", npyBytes("<i8", [2], [4, 5])));
    assert.equal(npy.format, "npy");
    assert.deepEqual(Array.from((npy.value as { data: Float64Array }).data), [4, 5]);
  });

  test("safetensors tensor names are own keys, even __proto__", () => {
    // Written by hand: a JS object literal cannot hold a "__proto__" key for JSON.stringify.
    const json = '{"__proto__": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}';
    const st = new Uint8Array(8 + json.length + 8);
    new DataView(st.buffer).setUint32(0, json.length, true);
    st.set(text(json), 8);
    st.set(encode("int64", [9]), 8 + json.length);
    const { value } = parseBytes(st, { fileName: "p.safetensors" });
    assert.ok(Object.hasOwn(value as object, "__proto__"));
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  test("every failure is an EplbFormatError naming the file", () => {
    assert.throws(
      () => parseBytes(text("\x93NUMPY"), { fileName: "t.npy" }),
      (e: unknown) => e instanceof EplbFormatError && e.file === "t.npy",
    );
    assert.throws(
      () => parseBytes(text("1,2"), { fileName: "f", format: "bogus" as "csv" }),
      formatError(/^f: unknown format bogus$/),
    );
  });
});

describe("readTensorFile, readLoads, readTrace, openTraceStream", () => {
  const trace = file("trace.npy", encodeNpy([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2], "int64"));

  test("a file is classified as a trace, loads or a placement", () => {
    assert.equal(readTensorFile(trace).kind, "trace");
    assert.equal(readTensorFile(file("l.json", "[[1, 2], [3, 4]]")).kind, "loads");
    const p = readTensorFile(file("p.json", '{"phy2log": [[0, 1, 0]]}'));
    assert.equal(p.kind, "placement");
  });

  test("a trace's loads are its steps summed, streamed or not, and sliced by `steps`", () => {
    assert.deepEqual(Array.from(readLoads(trace).data), [6, 8, 10, 12]);
    assert.deepEqual(Array.from(readLoads(trace, { steps: "1:" }).data), [5, 6, 7, 8]);
    assert.deepEqual(Array.from(readLoads(trace, { format: "npy" }).data), [6, 8, 10, 12]);
    const t = readTrace(trace, { steps: ":1" });
    assert.deepEqual([t.steps, t.layers, t.experts], [1, 2, 2]);
    assert.deepEqual(Array.from(t.data), [1, 2, 3, 4]);
  });

  test("openTraceStream: only for a C-order .npy read without key, placement or other format", () => {
    const s = openTraceStream(trace);
    assert.ok(s);
    assert.equal(s.steps, 2);
    s.close();
    assert.equal(openTraceStream(trace, { key: "x" }), null);
    assert.equal(openTraceStream(trace, { format: "json" }), null);
    assert.equal(openTraceStream(trace, { slotPlacement: "p.json" }), null);
  });

  test("a bad steps slice is the caller's EplbInputError, not a format error", () => {
    assert.throws(() => readLoads(trace, { steps: "3:1" }), EplbInputError);
  });

  test("a TensorRT-LLM statistics folder refuses --key", () => {
    const folder = join(dir, "stats");
    mkdirSync(folder);
    writeFileSync(join(folder, "meta_info.json"), "{}");
    assert.throws(
      () => readLoads(folder, { key: "x" }),
      formatError(/--key does not apply to a TensorRT-LLM statistics folder$/),
    );
  });
});

// Made by test/fixtures/engines/make_trtllm_lb_yaml.py as TensorRT-LLM's generate_eplb_config.py
// writes them, for the statistics folder beside them (model layers 3-5, 8 slots).
describe("TensorRT-LLM load balancer configs as --slot-placement", () => {
  const trtllm = join(repoRoot, "test", "fixtures", "engines", "trtllm");
  const stats = join(trtllm, "stats");
  const online = join(trtllm, "lb-online.yaml");

  test("a static config folds the slot counts it was recorded under", () => {
    const slots = join(trtllm, "lb-static.yaml");
    const raw = readLoads(stats);
    const folded = readLoads(stats, { slotPlacement: slots });
    const map = readPlacement(slots);
    assert.deepEqual([folded.layers, folded.experts], [3, 6]);
    const want = new Array(3 * 6).fill(0);
    for (let l = 0; l < 3; l++) {
      for (let s = 0; s < 8; s++) want[l * 6 + map.phy2log[l * 8 + s]] += raw.data[l * 8 + s];
    }
    assert.deepEqual(Array.from(folded.data), want);
  });

  test("an online config (layer_updates_per_iter > 0) is refused: its slots moved while recording", () => {
    // Regression: the starting placement used to fold the counts as if the slots never moved.
    const refused = formatError(
      /lb-online\.yaml: layer_updates_per_iter is 2: TensorRT-LLM's online load balancer starts from initial_global_assignments and moves the slots while serving, so slot counts recorded under it .* record with a static config \(layer_updates_per_iter: 0\)$/,
    );
    assert.throws(() => readLoads(stats, { slotPlacement: online }), refused);
    assert.throws(() => readTrace(stats, { slotPlacement: online }), refused);
  });

  test("read as a placement, an online config gives its starting slots with a warning", () => {
    const notes: string[] = [];
    const p = readPlacement(online, { onNote: (n) => notes.push(`${n.level}: ${n.text}`) });
    assert.deepEqual(Array.from(p.phy2log.subarray(0, 8)), [0, 1, 2, 3, 4, 5, 0, 1]);
    assert.deepEqual(notes, [
      `warning: ${online}: layer_updates_per_iter is 2: TensorRT-LLM's online load balancer starts from initial_global_assignments and moves the slots while serving; eplb reads the starting placement`,
    ]);
    const quiet: string[] = [];
    readPlacement(join(trtllm, "lb-static.yaml"), { onNote: (n) => quiet.push(n.text) });
    assert.deepEqual(quiet, []);
  });

  test("layer_updates_per_iter must be an integer >= 0", () => {
    for (const [value, shown] of [
      ["-1", "the number -1"],
      ["1.5", "the number 1.5"],
      ['"2"', "a string"],
    ]) {
      const path = file(
        `lb-${shown.replace(/\W/g, "")}.yaml`,
        `num_slots: 2\nlayer_updates_per_iter: ${value}\ninitial_global_assignments:\n  0: [0, 1]\n`,
      );
      assertRefused(
        () => readPlacement(path),
        EplbFormatError,
        `${path}: layer_updates_per_iter is ${shown}: expected an integer >= 0`,
      );
    }
  });
});

describe("asFormatError", () => {
  test("the caller's errors pass through; anything else becomes a one-line format error", () => {
    const format = new EplbFormatError("f", "x");
    const input = new EplbInputError("steps", "3:1", "must be a slice");
    assert.equal(asFormatError(format, "g"), format);
    assert.equal(asFormatError(input, "g"), input);
    const e = asFormatError(new RangeError("Array buffer\nallocation failed"), "x.pt");
    assert.ok(e instanceof EplbFormatError);
    assert.equal(e.message, "x.pt: cannot be read: Array buffer allocation failed");
    assert.equal(asFormatError("thrown string", "x").message, "x: cannot be read: thrown string");
  });
});

test("FILE_FORMATS lists every format detectFormat and --format know", () => {
  assert.deepEqual([...FILE_FORMATS].sort(), [
    "csv",
    "json",
    "npy",
    "npz",
    "pt",
    "safetensors",
    "yaml",
  ]);
});

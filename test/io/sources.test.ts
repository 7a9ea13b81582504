/**
 * src/io/sources.ts: `--loads` given several files and folders. A folder stands for its SGLang
 * dumps (or is a TensorRT-LLM statistics folder), files of one model are summed, files of
 * different models or the same file twice are refused, and the summary line says what was read.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { encodeNpy } from "../../src/io/npy-write.js";
import type { LoadsNote } from "../../src/io/read.js";
import {
  describeLoadSource,
  expandLoadPath,
  type LoadSource,
  readLoadSources,
  readRankTraces,
} from "../../src/io/sources.js";
import { repoRoot } from "../helpers/cli.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir, file } = tempFiles("eplb-sources-");
// Made by test/fixtures/engines/make_sglang.py as SGLang's recorder writes them.
const sglang = join(repoRoot, "test", "fixtures", "engines", "sglang");
const trtllm = join(repoRoot, "test", "fixtures", "engines", "trtllm", "stats");

describe("expandLoadPath", () => {
  test("a file is itself; a TensorRT-LLM folder is the folder; another folder its dumps by name", () => {
    const f = file("l.json", "[[1]]");
    assert.deepEqual(expandLoadPath(f), [f]);
    assert.deepEqual(expandLoadPath(trtllm), [trtllm]);
    const d = join(dir, "dumps");
    mkdirSync(d);
    for (const name of [
      "expert_distribution_b.pt",
      "expert_distribution_a.CSV",
      "other.pt",
      "notes.txt",
    ]) {
      writeFileSync(join(d, name), "");
    }
    assert.deepEqual(expandLoadPath(d), [
      join(d, "expert_distribution_a.CSV"),
      join(d, "expert_distribution_b.pt"),
    ]);
  });

  test("a missing path, and a folder with nothing to read, are refused naming the path", () => {
    const missing = join(dir, "missing");
    assertRefused(() => expandLoadPath(missing), EplbFormatError, `${missing}: no such file`);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    assertRefused(
      () => expandLoadPath(empty),
      EplbFormatError,
      `${empty}: is a folder with no SGLang dumps (expert_distribution_*.pt or *.csv) and no meta_info.json (TensorRT-LLM statistics)`,
    );
  });
});

describe("readLoadSources", () => {
  test("files of one model in any format are summed; kinds listed once each", () => {
    const a = file("a.json", "[[1, 2], [3, 4]]");
    const b = file("b.npy", encodeNpy([10, 20, 30, 40], [2, 2], "int64"));
    const c = file("c.json", "[[100, 0], [0, 100]]");
    const s = readLoadSources([a, b, c]);
    assert.deepEqual(Array.from(s.loads.data), [111, 22, 33, 144]);
    assert.equal(s.files, 3);
    assert.deepEqual(s.kinds, ["JSON", ".npy"]);
    assert.deepEqual(s.warnings, []);
    assert.equal(s.passes, undefined);
    assert.equal(describeLoadSource(s), "3 files summed (JSON, .npy)");
  });

  test("files of different shapes, and one file twice, are refused", () => {
    const a = file("a.json", "[[1, 2], [3, 4]]");
    const wide = file("w.json", "[[1, 2, 3], [4, 5, 6]]");
    assertRefused(
      () => readLoadSources([a, wide]),
      EplbFormatError,
      `${wide}: has 2 layers x 3 experts but ${a} has 2 x 2: files summed must be of one model`,
    );
    assertRefused(
      () => readLoadSources([a, join(dir, ".", a.slice(dir.length + 1))]),
      EplbFormatError,
      /is given twice: it would be counted twice$/,
    );
  });

  test("all-zero loads are read, with a warning passed to onNote", () => {
    const z = file("z.json", "[[0, 0]]");
    const notes: LoadsNote[] = [];
    const s = readLoadSources([z], { onNote: (n) => notes.push(n) });
    const text = `${z}: the loads are all zero (nothing was recorded); a plan on them is arbitrary`;
    assert.deepEqual(s.warnings, [text]);
    assert.deepEqual(notes, [{ level: "warning", text }]);
  });

  test("SGLang per_pass dumps of a folder: passes across ranks, --steps over the passes", () => {
    const s = readLoadSources([join(sglang, "per_pass")]);
    assert.equal(s.passes?.steps, 4);
    assert.deepEqual(s.passIds, [17, 18, 19, 20]);
    assert.deepEqual(s.ranks, [0, 1]);
    assert.equal(
      describeLoadSource(s),
      "2 files summed (SGLang per_pass dump), 4 forward passes, ranks 0, 1",
    );
    const last = readLoadSources([join(sglang, "per_pass")], { steps: "-1:" });
    assert.deepEqual(last.passIds, [20]);
    const n = s.loads.layers * s.loads.experts;
    assert.deepEqual(
      Array.from(last.loads.data),
      Array.from(s.passes!.data.subarray(3 * n, 4 * n)),
    );
  });

  test("SGLang's long CSVs of several ranks merge by model layer id, with the ids told", () => {
    const r0 = file("r0.csv", "layer_id,expert_id,count\n3,0,1\n5,1,2\n");
    const r1 = file("r1.csv", "layer_id,expert_id,count\n4,2,7\n5,0,1\n");
    const notes: LoadsNote[] = [];
    const s = readLoadSources([r0, r1], { onNote: (n) => notes.push(n) });
    assert.deepEqual(s.layerIds, [3, 4, 5]);
    assert.deepEqual([s.loads.layers, s.loads.experts], [3, 3]);
    assert.deepEqual(Array.from(s.loads.data), [1, 0, 0, 0, 0, 7, 1, 2, 0]);
    assert.deepEqual(s.kinds, ["SGLang CSV dump"]);
    assert.equal(notes.length, 1);
    assert.match(
      notes[0].text,
      /^SGLang CSV: rows are model layers 3\.\.5 \(3 recorded\), experts 0\.\.2/,
    );
  });

  test("a TensorRT-LLM folder counts as one file", () => {
    const s = readLoadSources([trtllm]);
    assert.equal(s.files, 1);
    assert.deepEqual(s.kinds, ["TensorRT-LLM statistics"]);
  });
});

describe("readRankTraces", () => {
  test("SGLang rank dumps become one trace, a step per forward pass", () => {
    const { trace, warnings } = readRankTraces([join(sglang, "per_pass")], { steps: "1:" });
    assert.equal(trace.steps, 3);
    assert.deepEqual(warnings, []);
  });

  test("other files, a key, a slot placement or dumps without passes are refused", () => {
    const a = file("a.json", "[[[1, 2]]]");
    assertRefused(
      () => readRankTraces([a], { key: "x" }),
      EplbFormatError,
      `${a}: several traces are SGLang rank dumps: a key or slot placement does not apply`,
    );
    assertRefused(
      () => readRankTraces([a]),
      EplbFormatError,
      `${a}: several traces are summed step by step only when they are SGLang per_pass / per_token dumps (matched by forward pass id); these are JSON: give one trace`,
    );
    const empty = join(sglang, "per_pass_empty.pt");
    assertRefused(
      () => readRankTraces([empty]),
      EplbFormatError,
      `${empty}: the SGLang dumps hold no forward pass`,
    );
  });
});

describe("describeLoadSource", () => {
  const base: LoadSource = {
    loads: { layers: 1, experts: 1, data: new Float64Array(1) },
    files: 1,
    kinds: ["torch file"],
    warnings: [],
  };

  test("files, passes, ranks and SGLang's logged balancedness, singular or plural", () => {
    assert.equal(describeLoadSource(base), "1 file (torch file)");
    assert.equal(
      describeLoadSource({
        ...base,
        passes: { steps: 1, layers: 1, experts: 1, data: new Float64Array(1) },
        ranks: [3],
        loggedBalancedness: 0.8766,
      }),
      "1 file (torch file), 1 forward pass, rank 3, SGLang logged balancedness 0.877 (its window average)",
    );
    assert.equal(describeLoadSource({ ...base, ranks: [] }), "1 file (torch file)");
  });
});

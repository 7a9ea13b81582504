import assert from "node:assert/strict";
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  MAX_ROUTING_ENTRIES,
  openRoutingTrace,
  readPassRouting,
  readRoutingFiles,
} from "../../src/io/routing.js";
import { repoRoot } from "../helpers/cli.js";
import { tempFiles } from "../helpers/temp.js";
import { npyBytes as npyOf } from "./support.js";

/** The arguments in the order these tests read best: values, shape, descr. */
const npyBytes = (
  values: readonly number[],
  shape: readonly number[],
  descr: string,
  fortran = false,
) => npyOf(descr, shape, values, { fortran });

const { file } = tempFiles("eplb-routing-");

describe("readRoutingFiles: .npy [tokens, layers, k]", () => {
  const ids = [0, 3, -1, 2, 1, 1, 3, -1, 0, 2, 2, 1]; // 3 tokens x 2 layers x 2

  for (const descr of ["<i8", ">i8", "<i4", ">i4", "<i2", "|i1"]) {
    test(`${descr}: ids as written, -1 kept`, () => {
      const r = readRoutingFiles([file("r.npy", npyBytes(ids, [3, 2, 2], descr))], 4);
      assert.deepEqual([r.tokens, r.layers, r.k, r.experts], [3, 2, 2, 4]);
      assert.deepEqual(Array.from(r.topk), ids);
      assert.equal(r.rank, null);
    });
  }

  test("unsigned dtypes (no -1 to write)", () => {
    const plain = ids.map((v) => Math.max(v, 0));
    for (const descr of ["|u1", "<u2", "<u4", "<u8"]) {
      const r = readRoutingFiles([file("r.npy", npyBytes(plain, [3, 2, 2], descr))], 4);
      assert.deepEqual(Array.from(r.topk), plain, descr);
    }
  });

  test("several files are one routing, tokens in order", () => {
    const a = file("a.npy", npyBytes(ids.slice(0, 4), [1, 2, 2], "<i8"));
    const b = file("b.npy", npyBytes(ids.slice(4), [2, 2, 2], "<i8"));
    const r = readRoutingFiles([a, b], 4);
    assert.equal(r.tokens, 3);
    assert.deepEqual(Array.from(r.topk), ids);
  });

  test("an id beyond the loads' experts is refused with its position", () => {
    const path = file("r.npy", npyBytes(ids, [3, 2, 2], "<i8"));
    assert.throws(
      () => readRoutingFiles([path], 3),
      (e: Error) =>
        e instanceof EplbFormatError &&
        /routing id at \[0, 0, 1\] is 3: ids must be -1 \(no choice\) or an expert of the loads, 0 \.\. 2/.test(
          e.message,
        ),
    );
  });

  test("negative ids other than -1, and 64-bit ids beyond int32, are refused", () => {
    assert.throws(
      () => readRoutingFiles([file("r.npy", npyBytes([0, -2], [1, 1, 2], "<i4"))], 4),
      /is -2/,
    );
    assert.throws(
      () => readRoutingFiles([file("r.npy", npyBytes([2 ** 33], [1, 1, 1], "<i8"))], 4),
      /out of the int32 range/,
    );
  });

  test("floats, Fortran order, other ranks and disagreeing files are refused in one line", () => {
    assert.throws(
      () => readRoutingFiles([file("r.npy", npyBytes([0, 1], [1, 1, 2], "<f4"))], 4),
      /holds <f4 values: expert ids must be integers/,
    );
    assert.throws(
      () => readRoutingFiles([file("r.npy", npyBytes([0, 1], [1, 1, 2], "<i4", true))], 4),
      /Fortran order/,
    );
    assert.throws(
      () => readRoutingFiles([file("r.npy", npyBytes([0, 1], [1, 1, 1, 2], "<i4"))], 4),
      /must be \[tokens, layers, k\] \(a \[steps, tokens, layers, k\] routing is for eplb simulate\)/,
    );
    const a = file("a.npy", npyBytes([0, 1], [1, 1, 2], "<i4"));
    const b = file("b.npy", npyBytes([0, 1], [1, 2, 1], "<i4"));
    assert.throws(() => readRoutingFiles([a, b], 4), /routing has 2 layers x 1 choices, unlike/);
  });

  test("a file claiming more ids than eplb reads is refused before anything is read", () => {
    // A sparse file: the header's shape and the file's size agree, the data was never written.
    const tokens = Math.floor(MAX_ROUTING_ENTRIES / 8) + 1;
    const head = npyBytes([], [tokens, 1, 8], "|i1");
    const path = file("big.npy", head);
    const fd = openSync(path, "r+");
    writeSync(fd, new Uint8Array(1), 0, 1, head.length + tokens * 8 - 1);
    closeSync(fd);
    assert.throws(() => readRoutingFiles([path], 4), /more than eplb reads \(134217728, 512 MiB\)/);
  });
});

describe("readRoutingFiles: a file given twice", () => {
  const dir = join(repoRoot, "test/fixtures/engines/sglang");
  test(".npy by two spellings of its path is refused: its tokens would count twice", () => {
    const r = file("twice.npy", npyBytes([0, 1, 2, 3], [2, 1, 2], "<i8"));
    const again = `${dirname(r)}/./${basename(r)}`; // the same file, spelt otherwise
    assert.throws(
      () => readRoutingFiles([r, again], 4),
      (e: unknown) =>
        e instanceof EplbFormatError &&
        e.message === `${again}: is given twice: its tokens would be counted twice`,
    );
  });
  test("a dump folder and a file in it are refused; each once is read", () => {
    const folder = join(dir, "per_token");
    const one = join(folder, readdirSync(folder).sort()[0]);
    assert.throws(
      () => readRoutingFiles([folder, one], 8),
      /is given twice: its tokens would be counted twice/,
    );
    assert.throws(() => readPassRouting([folder, folder], 8), /is given twice/);
  });
});

describe("readRoutingFiles: SGLang per_token dumps", () => {
  const dir = join(repoRoot, "test/fixtures/engines/sglang");
  const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));

  test("the folder: logical top-k with each token's rank", () => {
    const r = readRoutingFiles([join(dir, "per_token")], expected.experts);
    const want = expected.per_token.routing;
    assert.equal(r.tokens, want.tokens);
    assert.deepEqual(Array.from(r.topk), want.topk.flat(2));
    assert.deepEqual(Array.from(r.rank ?? []), want.rank);
  });

  test("dumps of another expert count, and a mix with .npy, are refused", () => {
    assert.throws(
      () => readRoutingFiles([join(dir, "per_token")], expected.experts + 1),
      /routing dumps map \d+ experts per layer, the loads \d+/,
    );
    const npy = file("r.npy", npyBytes([0], [1, 1, 1], "<i8"));
    assert.throws(
      () => readRoutingFiles([npy, join(dir, "per_token")], expected.experts),
      /is not a \.npy routing/,
    );
  });

  test("a dump of another mode is refused", () => {
    assert.throws(
      () => readRoutingFiles([join(dir, "per_pass")], expected.experts),
      /has no per-token routing/,
    );
  });

  test("ranks that recorded the same tokens (no DeepEP): each token once, no source rank, one warning", () => {
    const warnings: string[] = [];
    const same = join(dir, "per_token_same_tokens");
    const r = readRoutingFiles([same], expected.experts, (w) => warnings.push(w));
    assert.equal(r.tokens, expected.same_tokens.routing.tokens);
    assert.deepEqual(Array.from(r.topk), expected.same_tokens.routing.topk.flat(2));
    assert.equal(r.rank, null);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /3 records in 3 forward passes repeat another rank's record/);
    const passes = readPassRouting([same], expected.experts);
    assert.deepEqual(passes.passIds, expected.same_tokens.passIds);
    assert.ok(passes.passes.every((p) => p.rank === null));
    assert.equal(
      passes.passes.reduce((n, p) => n + p.tokens, 0),
      expected.same_tokens.routing.tokens,
    );
    assert.equal(passes.repeated, warnings[0]);
    // Distinct ranks keep their ranks and warn of nothing.
    const distinct: string[] = [];
    readRoutingFiles([join(dir, "per_token")], expected.experts, (w) => distinct.push(w));
    assert.deepEqual(distinct, []);
    assert.equal(readPassRouting([join(dir, "per_token")], expected.experts).repeated, undefined);
  });
});

describe("openRoutingTrace: [steps, tokens, layers, k], a step at a time", () => {
  const ids = [0, 1, 1, -1, 2, 2, 0, 0]; // 2 steps x 2 tokens x 1 layer x 2

  test("each step as written; the buffer is reused", () => {
    const t = openRoutingTrace(file("t.npy", npyBytes(ids, [2, 2, 1, 2], "<i8")), 3);
    try {
      assert.deepEqual([t.steps, t.tokens, t.layers, t.k], [2, 2, 1, 2]);
      assert.deepEqual(Array.from(t.readStep(1).topk), [2, 2, 0, 0]);
      assert.deepEqual(Array.from(t.readStep(0).topk), [0, 1, 1, -1]);
    } finally {
      t.close();
    }
    assert.throws(() => t.readStep(0), /read after close/);
  });

  test("ids are checked as each step is read; other ranks are refused", () => {
    const t = openRoutingTrace(file("t.npy", npyBytes(ids, [2, 2, 1, 2], "<i8")), 2);
    try {
      t.readStep(0);
      assert.throws(() => t.readStep(1), /routing id at \[1, 0, 0, 0\] is 2/);
    } finally {
      t.close();
    }
    assert.throws(
      () => openRoutingTrace(file("t.npy", npyBytes(ids, [4, 1, 2], "<i8")), 3),
      /needs \[steps, tokens, layers, k\]/,
    );
  });
});

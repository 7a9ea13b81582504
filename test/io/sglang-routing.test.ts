/**
 * src/io/sglang-routing.ts: the per-token routing of SGLang per_token dumps, as logical experts.
 * Tokens come in file, record and token order, each with its rank and forward pass; the choices
 * they hold add up to the loads the same dumps give; the wrong kind of file, or a file given
 * twice, is refused naming it.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { readRouting, type TokenRouting } from "../../src/io/sglang-routing.js";
import { readLoadSources } from "../../src/io/sources.js";
import { repoRoot } from "../helpers/cli.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

// Made by test/fixtures/engines/make_sglang.py as SGLang's recorder writes per_token dumps.
const folder = join(repoRoot, "test", "fixtures", "engines", "sglang", "per_token");
const files = readdirSync(folder)
  .sort()
  .map((n) => join(folder, n));
const { file } = tempFiles("eplb-sglang-routing-");

/** Token `t`'s choices in layer `l`. */
const choices = (r: TokenRouting, t: number, l: number) =>
  Array.from(r.topk.subarray((t * r.layers + l) * r.k, (t * r.layers + l + 1) * r.k));

describe("readRouting", () => {
  test("a folder reads as its files in name order; arrays are sized tokens x layers x k", () => {
    const r = readRouting(folder);
    assert.deepEqual(readRouting(files), r);
    assert.equal(r.topk.length, r.tokens * r.layers * r.k);
    assert.equal(r.rank.length, r.tokens);
    assert.equal(r.forwardPassId.length, r.tokens);
    assert.equal(r.repeated, undefined);
    for (let i = 1; i < r.tokens; i++) assert.ok(r.rank[i] >= r.rank[i - 1], "rank 0's file first");
  });

  test("files given in another order give their tokens in that order", () => {
    const forward = readRouting(files);
    const backward = readRouting([...files].reverse());
    const first = Array.from(forward.rank).filter((x) => x === 0).length;
    const later = forward.tokens - first;
    assert.deepEqual(Array.from(backward.rank), [
      ...new Array(later).fill(1),
      ...new Array(first).fill(0),
    ]);
    for (let t = 0; t < later; t++) {
      for (let l = 0; l < forward.layers; l++) {
        assert.deepEqual(choices(backward, t, l), choices(forward, first + t, l));
      }
    }
  });

  test("the choices add up to the loads readLoadSources reads from the same dumps", () => {
    const r = readRouting(folder);
    const { loads } = readLoadSources([folder]);
    assert.deepEqual([loads.layers, loads.experts], [r.layers, r.experts]);
    const counted = new Float64Array(r.layers * r.experts);
    for (let t = 0; t < r.tokens; t++) {
      for (let l = 0; l < r.layers; l++) {
        for (const e of choices(r, t, l)) {
          if (e === -1) continue;
          assert.ok(e >= 0 && e < r.experts, `expert ${e} in range`);
          counted[l * r.experts + e]++;
        }
      }
    }
    assert.deepEqual(Array.from(counted), Array.from(loads.data));
  });

  test("a file that is not a per_token dump, or one given twice, is refused", () => {
    const json = file("l.json", "[[1, 2]]");
    assertRefused(
      () => readRouting([json]),
      EplbFormatError,
      `${json}: has no per-token routing: it is not an SGLang dump recorded with --expert-distribution-recorder-mode per_token`,
    );
    assertRefused(
      () => readRouting([files[0], folder]),
      EplbFormatError,
      `${files[0]}: is given twice: its tokens would be counted twice`,
    );
  });

  test("no file read: no tokens", () => {
    const r = readRouting([]);
    assert.deepEqual([r.tokens, r.layers, r.k, r.experts, r.topk.length], [0, 0, 0, 0, 0]);
  });
});

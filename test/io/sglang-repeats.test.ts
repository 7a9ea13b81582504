/**
 * The fingerprint and tracker that find SGLang records several ranks hold alike: equal for the
 * same logical content whatever the replicas, different for any other choice; idle records and
 * a rank's own records never repeat.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { SglangPass } from "../../src/io/sglang.js";
import { RepeatedRecords, recordFingerprint } from "../../src/io/sglang-repeats.js";

// 2 layers x 3 slots: slots 0 and 2 both hold expert 0 in layer 0, slots 1 and 2 expert 1 in layer 1.
const phy2log = new Int32Array([0, 1, 0, 0, 1, 1]);
const slots = 3;

/** A per_token record of `ids` `[layers, tokens, k]` (physical slots). */
function tokenPass(ids: number[], tokens: number, k: number, rank = 0, id = 5): SglangPass {
  return {
    forwardPassId: id,
    rank,
    loads: new Float64Array(0),
    physical: new Float64Array(0),
    topk: { dtype: "int32", shape: [2, tokens, k], data: new Float64Array(ids) },
  };
}

function countPass(loads: number[], rank = 0, id = 5): SglangPass {
  return { forwardPassId: id, rank, loads: new Float64Array(loads), physical: new Float64Array(0) };
}

describe("recordFingerprint", () => {
  test("per_token: the same logical choices through other replicas are equal; another choice, order or shape is not", () => {
    // token 0 chooses expert 0 in layer 0 and expert 1 in layer 1; token 1 expert 1, then 0.
    const a = recordFingerprint(tokenPass([0, 1, 1, 0], 2, 1), phy2log, slots);
    const b = recordFingerprint(tokenPass([2, 1, 2, 0], 2, 1), phy2log, slots);
    assert.ok(a !== null);
    assert.equal(a, b);
    const swapped = recordFingerprint(tokenPass([1, 0, 0, 1], 2, 1), phy2log, slots);
    assert.notEqual(a, swapped);
    const other = recordFingerprint(tokenPass([0, 0, 1, 0], 2, 1), phy2log, slots);
    assert.notEqual(a, other);
    // the same ids read as 1 token of top-2
    const shape = recordFingerprint(tokenPass([0, 1, 1, 0], 1, 2), phy2log, slots);
    assert.notEqual(a, shape);
  });

  test("per_pass: logical counts; a record of no token has none", () => {
    assert.equal(
      recordFingerprint(countPass([3, 1, 0, 2]), phy2log, slots),
      recordFingerprint(countPass([3, 1, 0, 2], 1), phy2log, slots),
    );
    assert.notEqual(
      recordFingerprint(countPass([3, 1, 0, 2]), phy2log, slots),
      recordFingerprint(countPass([3, 1, 2, 0]), phy2log, slots),
    );
    assert.equal(recordFingerprint(countPass([0, 0, 0, 0]), phy2log, slots), null);
    assert.equal(recordFingerprint(tokenPass([-1, -1], 1, 1), phy2log, slots), null);
    assert.equal(recordFingerprint(tokenPass([], 0, 1), phy2log, slots), null);
  });
});

describe("RepeatedRecords", () => {
  test("another rank's equal record of the same pass repeats; the same rank, another pass or no token does not", () => {
    const r = new RepeatedRecords();
    const print = (p: SglangPass) => recordFingerprint(p, phy2log, slots);
    const seen = (p: SglangPass, f: string) => r.repeats(p, print(p), f);
    assert.equal(seen(countPass([1, 2, 0, 0], 0, 5), "r0.pt"), false);
    assert.equal(seen(countPass([1, 2, 0, 0], 0, 6), "r0.pt"), false); // another pass
    assert.equal(seen(countPass([1, 2, 0, 0], 0, 5), "r0.pt"), false); // the same rank
    assert.equal(seen(countPass([0, 0, 0, 0], 0, 7), "r0.pt"), false);
    assert.equal(seen(countPass([0, 0, 0, 0], 1, 7), "r1.pt"), false); // idle ranks
    assert.equal(seen(countPass([1, 2, 0, 1], 1, 5), "r1.pt"), false); // other tokens
    assert.equal(r.warning("loads"), undefined);
    assert.equal(seen(countPass([1, 2, 0, 0], 1, 5), "r1.pt"), true);
    assert.equal(seen(countPass([1, 2, 0, 0], 2, 5), "r2.pt"), true);
    assert.equal(seen(countPass([1, 2, 0, 0], 1, 6), "r1.pt"), true);
    assert.equal(r.records, 3);
    assert.deepEqual([...r.passes], [5, 6]);
    assert.deepEqual(r.files, ["r1.pt", "r2.pt"]);
    assert.equal(
      r.warning("loads"),
      "2 files (r1.pt, ...): 3 records in 2 forward passes repeat another rank's record of the same pass (SGLang without DeepEP routes every token on every rank); eplb counted each pass's tokens once, not once per rank",
    );
    assert.match(r.warning("routing") ?? "", /eplb kept each token once, with no source rank/);
  });
});

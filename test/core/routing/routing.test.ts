import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { makeRouting, type Routing } from "../../../src/core/routing/routing.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const base: Routing = {
  tokens: 2,
  layers: 1,
  k: 2,
  experts: 4,
  topk: new Int32Array([0, 1, 2, -1]),
  rank: null,
};

describe("makeRouting", () => {
  test("returns the routing's fields, -1 (no choice) and ranks included", () => {
    const r = makeRouting(base);
    assert.deepEqual({ ...r }, { ...base });
    assert.equal(r.topk, base.topk);
    const ranked = makeRouting({ ...base, rank: new Int32Array([0, 7]) });
    assert.deepEqual(Array.from(ranked.rank ?? []), [0, 7]);
  });

  test("an empty routing (0 tokens) is valid", () => {
    const r = makeRouting({ ...base, tokens: 0, topk: new Int32Array(0), rank: new Int32Array(0) });
    assert.equal(r.tokens, 0);
  });

  test("a routing it returned is returned as is; extra fields of the input are dropped", () => {
    const r = makeRouting({ ...base, extra: 1 } as Routing);
    assert.equal("extra" in r, false);
    assert.equal(makeRouting(r), r);
  });

  test("refuses shapes that are not integers in range", () => {
    assertRefused(
      () => makeRouting({ ...base, tokens: 1.5 }),
      EplbInputError,
      "tokens (1.5) must be an integer >= 0",
      "tokens",
    );
    assertRefused(
      () => makeRouting({ ...base, layers: 0 }),
      EplbInputError,
      "layers (0) must be an integer >= 1",
      "layers",
    );
    assertRefused(
      () => makeRouting({ ...base, k: 0 }),
      EplbInputError,
      "k (0) must be an integer >= 1",
      "k",
    );
    assertRefused(
      () => makeRouting({ ...base, experts: -1 }),
      EplbInputError,
      "experts (-1) must be an integer >= 1",
      "experts",
    );
  });

  test("refuses a topk of the wrong length or type, naming the product it must equal", () => {
    assertRefused(
      () => makeRouting({ ...base, topk: new Int32Array(3) }),
      EplbInputError,
      "topk.length (3) must equal tokens * layers * k (2 * 1 * 2 = 4)",
      "topk.length",
    );
    assertRefused(
      () => makeRouting({ ...base, topk: [0, 1, 2, 3] as unknown as Int32Array }),
      EplbInputError,
      /^topk\.length \(4\) must equal tokens \* layers \* k/,
      "topk.length",
    );
  });

  test("refuses an expert id below -1 or at or above experts, naming its index", () => {
    assertRefused(
      () => makeRouting({ ...base, topk: new Int32Array([0, 1, 4, 0]) }),
      EplbInputError,
      "topk[2] (4) must be -1 or an expert id in 0 .. 3",
      "topk[2]",
    );
    assertRefused(
      () => makeRouting({ ...base, topk: new Int32Array([0, -2, 3, 0]) }),
      EplbInputError,
      "topk[1] (-2) must be -1 or an expert id in 0 .. 3",
      "topk[1]",
    );
  });

  test("refuses ranks of the wrong length or negative", () => {
    assertRefused(
      () => makeRouting({ ...base, rank: new Int32Array(3) }),
      EplbInputError,
      "rank.length (3) must equal tokens (2)",
      "rank.length",
    );
    assertRefused(
      () => makeRouting({ ...base, rank: new Int32Array([0, -1]) }),
      EplbInputError,
      "rank[1] (-1) must be >= 0",
      "rank[1]",
    );
  });
});

/**
 * src/core/routing/window.ts: the routing a simulated rebalance plans with is the window's
 * tokens in step order, sampled evenly to a bounded size, each step read once.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { makeRouting, type Routing } from "../../../src/core/routing/routing.js";
import { windowRouting } from "../../../src/core/routing/window.js";
import { EplbInputError } from "../../../src/index.js";

/** Step s has `counts[s]` tokens, token t of it choosing expert `(s * 10 + t) % 64`; rank = t. */
function steps(counts: number[], ranks = true) {
  const reads: number[] = [];
  // One buffer reused for every step, as a streaming reader does.
  const buffer = new Int32Array(Math.max(...counts) * 2);
  const rankBuffer = new Int32Array(Math.max(...counts));
  const readStep = (s: number): Routing => {
    reads.push(s);
    const n = counts[s];
    for (let t = 0; t < n; t++) {
      buffer[2 * t] = (s * 10 + t) % 64;
      buffer[2 * t + 1] = -1;
      rankBuffer[t] = t;
    }
    return makeRouting({
      tokens: n,
      layers: 1,
      k: 2,
      experts: 64,
      topk: buffer.subarray(0, 2 * n),
      rank: ranks ? rankBuffer.subarray(0, n) : null,
    });
  };
  return { tokensOf: (s: number) => counts[s], readStep, reads };
}

const firstChoices = (r: Routing) => Array.from({ length: r.tokens }, (_, t) => r.topk[t * r.k]);

describe("windowRouting", () => {
  test("concatenates the window's steps in order, ranks kept, each step read once", () => {
    const s = steps([3, 2, 4, 1]);
    const r = windowRouting(s.tokensOf, s.readStep, 1, 3);
    assert.deepEqual(s.reads, [1, 2]);
    assert.equal(r.tokens, 6);
    assert.deepEqual(firstChoices(r), [10, 11, 20, 21, 22, 23]);
    assert.deepEqual(Array.from(r.rank ?? []), [0, 1, 0, 1, 2, 3]);
  });

  test("samples rows floor(i * total / maxTokens) when the window holds more", () => {
    const s = steps([3, 2, 4]);
    const r = windowRouting(s.tokensOf, s.readStep, 0, 3, 4);
    // 9 rows: 0 2 4 6 -> step 0 token 0, step 0 token 2, step 1 token 1, step 2 token 1.
    assert.deepEqual(firstChoices(r), [0, 2, 11, 21]);
    assert.deepEqual(Array.from(r.rank ?? []), [0, 2, 1, 1]);
    assert.equal(windowRouting(s.tokensOf, s.readStep, 0, 3, 1).tokens, 1);
  });

  test("ranks are dropped unless every step has them", () => {
    const s = steps([2, 2], false);
    assert.equal(windowRouting(s.tokensOf, s.readStep, 0, 2).rank, null);
  });

  test("an empty or inverted window, or maxTokens below 1, is refused", () => {
    const s = steps([2, 2]);
    const refused = (fn: () => unknown, parameter: string) =>
      assert.throws(fn, (e: unknown) => e instanceof EplbInputError && e.parameter === parameter);
    refused(() => windowRouting(s.tokensOf, s.readStep, 1, 1), "to");
    refused(() => windowRouting(s.tokensOf, s.readStep, 2, 1), "to");
    refused(() => windowRouting(s.tokensOf, s.readStep, -1, 1), "from");
    refused(() => windowRouting(s.tokensOf, s.readStep, 0, 2, 0), "maxTokens");
  });

  test("a step with other tokens than announced, or another shape, is refused naming it", () => {
    const s = steps([2, 3]);
    assert.throws(
      () => windowRouting(() => 2, s.readStep, 0, 2),
      (e: unknown) =>
        e instanceof EplbInputError && e.message === "routing of step 1 (3) must hold 2 tokens",
    );
    const other = (step: number): Routing =>
      makeRouting({
        tokens: 1,
        layers: 1,
        k: step === 0 ? 2 : 1,
        experts: 4,
        topk: new Int32Array(step === 0 ? [0, 1] : [2]),
        rank: null,
      });
    assert.throws(
      () => windowRouting(() => 1, other, 0, 2),
      (e: unknown) =>
        e instanceof EplbInputError &&
        /^routing of step 1 \("1 layers x top-1 of 4 experts"\) must match step 0's 1 layers x top-2 of 4$/.test(
          e.message,
        ),
    );
  });
});

/**
 * src/core/routing/coactivation.ts: the pair counts the locality search optimises are exactly
 * how many tokens chose both experts, and the pruned graph keeps each expert's strongest pairs.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { coActivationGraph, layerCoActivation } from "../../../src/core/routing/coactivation.js";
import { makeRouting } from "../../../src/core/routing/routing.js";
import { EplbInputError } from "../../../src/index.js";

/** A seeded routing: `tokens` x `layers` x top-`k` of `experts`, with repeats and -1 (dropped). */
function randomRouting(tokens: number, layers: number, k: number, experts: number, seed: number) {
  let s = seed;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const topk = new Int32Array(tokens * layers * k);
  for (let i = 0; i < topk.length; i++) {
    const u = next();
    topk[i] = u < 0.05 ? -1 : Math.floor(next() * experts);
  }
  return makeRouting({ tokens, layers, k, experts, topk, rank: null });
}

/** Pair counts by brute force: a map "a,b" -> tokens that chose both (a < b). */
function bruteForce(
  r: ReturnType<typeof randomRouting>,
  layer: number,
  stride = 1,
): Map<string, number> {
  const out = new Map<string, number>();
  for (let t = 0; t < r.tokens; t += stride) {
    const base = (t * r.layers + layer) * r.k;
    const chosen = [
      ...new Set(Array.from(r.topk.subarray(base, base + r.k)).filter((e) => e >= 0)),
    ];
    chosen.sort((a, b) => a - b);
    for (let i = 0; i < chosen.length; i++) {
      for (let j = i + 1; j < chosen.length; j++) {
        const key = `${chosen[i]},${chosen[j]}`;
        out.set(key, (out.get(key) ?? 0) + 1);
      }
    }
  }
  return out;
}

function asMap(c: ReturnType<typeof layerCoActivation>): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < c.first.length; i++) out.set(`${c.first[i]},${c.second[i]}`, c.count[i]);
  return out;
}

describe("layerCoActivation", () => {
  const r = randomRouting(300, 3, 4, 12, 7);

  test("counts every pair of distinct experts a token chose, per layer, sorted", () => {
    for (let layer = 0; layer < 3; layer++) {
      const c = layerCoActivation(r, layer);
      assert.equal(c.tokens, 300);
      assert.deepEqual(asMap(c), bruteForce(r, layer));
      for (let i = 0; i < c.first.length; i++) {
        assert.ok(c.first[i] < c.second[i]);
        if (i > 0) {
          const before = c.first[i - 1] * 12 + c.second[i - 1];
          assert.ok(before < c.first[i] * 12 + c.second[i], "sorted by first, then second");
        }
      }
    }
  });

  test("with maxTokens every ceil(tokens / maxTokens)-th token is counted", () => {
    const c = layerCoActivation(r, 1, 100);
    assert.equal(c.tokens, 100);
    assert.deepEqual(asMap(c), bruteForce(r, 1, 3));
    assert.equal(layerCoActivation(r, 1, 7).tokens, Math.ceil(300 / Math.ceil(300 / 7)));
  });

  test("a scratch reused across layers comes back zeroed, so later layers are not polluted", () => {
    const scratch = new Int32Array(12 * 12);
    for (let layer = 0; layer < 3; layer++) {
      assert.deepEqual(
        asMap(layerCoActivation(r, layer, undefined, scratch)),
        bruteForce(r, layer),
      );
      assert.ok(scratch.every((v) => v === 0));
    }
  });

  test("bad arguments are refused, naming them", () => {
    const refused = (fn: () => unknown, parameter: string) =>
      assert.throws(fn, (e: unknown) => e instanceof EplbInputError && e.parameter === parameter);
    refused(() => layerCoActivation(r, 3), "layer");
    refused(() => layerCoActivation(r, -1), "layer");
    refused(() => layerCoActivation(r, 0, undefined, new Int32Array(143)), "scratch.length");
    const many = randomRouting(70000, 1, 2, 4, 1);
    refused(() => layerCoActivation(many, 0, undefined, new Uint16Array(16)), "scratch");
    // Without a scratch it picks one wide enough.
    assert.equal(layerCoActivation(many, 0).tokens, 70000);
  });
});

describe("coActivationGraph", () => {
  const r = randomRouting(400, 1, 4, 10, 3);
  const co = layerCoActivation(r, 0);

  function edges(g: ReturnType<typeof coActivationGraph>): Map<string, number> {
    const out = new Map<string, number>();
    for (let e = 0; e < g.experts; e++) {
      for (let i = g.start[e]; i < g.start[e + 1]; i++)
        out.set(`${e},${g.neighbor[i]}`, g.weight[i]);
    }
    return out;
  }

  test("without a cap it is every pair, in both directions, weighted by its count", () => {
    const g = edges(coActivationGraph(co));
    assert.equal(g.size, 2 * co.first.length);
    for (let i = 0; i < co.first.length; i++) {
      assert.equal(g.get(`${co.first[i]},${co.second[i]}`), co.count[i]);
      assert.equal(g.get(`${co.second[i]},${co.first[i]}`), co.count[i]);
    }
  });

  test("with a cap each expert keeps (at least) its strongest pairs, and the graph stays symmetric", () => {
    const cap = 2;
    const g = edges(coActivationGraph(co, cap));
    for (const [key, w] of g) {
      const [a, b] = key.split(",");
      assert.equal(g.get(`${b},${a}`), w, "symmetric");
    }
    // Each expert's threshold: the count of its cap-th strongest pair (ties kept), 0 under cap.
    const threshold = Array.from({ length: 10 }, (_, e) => {
      const mine: number[] = [];
      for (let i = 0; i < co.first.length; i++) {
        if (co.first[i] === e || co.second[i] === e) mine.push(co.count[i]);
      }
      mine.sort((x, y) => y - x);
      return mine.length > cap ? mine[cap - 1] : 0;
    });
    for (let i = 0; i < co.first.length; i++) {
      const [a, b, c] = [co.first[i], co.second[i], co.count[i]];
      const kept = c >= threshold[a] || c >= threshold[b];
      assert.equal(
        g.has(`${a},${b}`),
        kept,
        `pair ${a},${b} (${c}), thresholds ${threshold[a]}, ${threshold[b]}`,
      );
    }
    assert.ok(g.size < 2 * co.first.length, "the cap pruned something on this routing");
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { lognormalLoads, Random, zipfLoads } from "../../../src/core/blocks/random.js";

const draws = (n: number, f: () => number) => Array.from({ length: n }, f);
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
const variance = (a: number[]) => {
  const m = mean(a);
  return mean(a.map((x) => (x - m) ** 2));
};

describe("Random", () => {
  test("the documented first draw: figures are reproducible from their seed on any platform", () => {
    assert.equal(new Random(42).next(), 0.6011037519201636);
  });

  test("the same seed gives the same sequence, another seed another; seeds are taken mod 2^32", () => {
    const a = new Random(7);
    const b = new Random(7);
    const sa = draws(100, () => a.next());
    assert.deepEqual(
      sa,
      draws(100, () => b.next()),
    );
    const c = new Random(8);
    assert.notDeepEqual(
      sa,
      draws(100, () => c.next()),
    );
    const d = new Random(7 + 2 ** 32);
    assert.deepEqual(
      sa,
      draws(100, () => d.next()),
    );
  });

  test("next is uniform in [0, 1) and int(n) in 0 .. n - 1, every value reached", () => {
    const rng = new Random(3);
    const u = draws(20000, () => rng.next());
    assert.ok(u.every((x) => x >= 0 && x < 1));
    assert.ok(Math.abs(mean(u) - 0.5) < 0.01);
    const seen = new Array(7).fill(0);
    for (let i = 0; i < 7000; i++) seen[rng.int(7)]++;
    assert.ok(
      seen.every((c) => c > 800 && c < 1200),
      `${seen}`,
    );
  });

  test("normal has mean 0 and variance 1; lognormal(sigma) is exp of sigma times it", () => {
    const rng = new Random(5);
    const z = draws(20000, () => rng.normal());
    assert.ok(Math.abs(mean(z)) < 0.03, `${mean(z)}`);
    assert.ok(Math.abs(variance(z) - 1) < 0.03, `${variance(z)}`);
    const a = new Random(9);
    const b = new Random(9);
    for (let i = 0; i < 50; i++) assert.equal(a.lognormal(0.7), Math.exp(0.7 * b.normal()));
    assert.equal(new Random(1).lognormal(0), 1);
  });

  test("the two values of a Box-Muller pair are independent (uncorrelated), not a repeat", () => {
    const rng = new Random(21);
    let xy = 0;
    const n = 10000;
    for (let i = 0; i < n; i++) xy += rng.normal() * rng.normal();
    assert.ok(Math.abs(xy / n) < 0.05, `correlation ${xy / n}`);
  });

  test("poisson has the mean it is given, below and above the normal-approximation switch", () => {
    for (const m of [0.5, 4, 30, 200]) {
      const rng = new Random(m * 10);
      const k = draws(5000, () => rng.poisson(m));
      assert.ok(
        k.every((x) => Number.isInteger(x) && x >= 0),
        "non-negative integers",
      );
      assert.ok(Math.abs(mean(k) - m) < 0.05 * m + 0.05, `mean ${mean(k)} for ${m}`);
      assert.ok(Math.abs(variance(k) - m) < 0.15 * m + 0.1, `variance ${variance(k)} for ${m}`);
    }
    // Small means are exact Poisson, not the rounded normal: P(0) = e^-mean.
    for (const m of [0.5, 4]) {
      const rng = new Random(17);
      const zeros = draws(20000, () => rng.poisson(m)).filter((x) => x === 0).length / 20000;
      assert.ok(Math.abs(zeros - Math.exp(-m)) < 0.01, `P(0) ${zeros} for ${m}`);
    }
    const rng = new Random(1);
    assert.equal(rng.poisson(0), 0);
    assert.equal(rng.poisson(-3), 0);
  });
});

describe("lognormalLoads", () => {
  test("a seeded [layers][experts] matrix of scale times lognormal draws, in generator order", () => {
    const m = lognormalLoads(3, 5, 0.8, 12, 10);
    assert.equal(m.layers, 3);
    assert.equal(m.experts, 5);
    assert.equal(m.data.length, 15);
    const rng = new Random(12);
    for (let i = 0; i < 15; i++) assert.equal(m.data[i], 10 * rng.lognormal(0.8));
    assert.deepEqual(lognormalLoads(3, 5, 0.8, 12, 10), m);
    assert.equal(
      lognormalLoads(1, 4, 1, 0).data.every((x) => x > 0),
      true,
    );
  });

  test("sigma 0 gives every expert the scale; the default scale is 1000", () => {
    assert.deepEqual(
      Array.from(lognormalLoads(2, 3, 0, 4).data),
      [1000, 1000, 1000, 1000, 1000, 1000],
    );
  });
});

describe("zipfLoads", () => {
  test("each layer is a permutation of scale / rank^exponent", () => {
    const E = 8;
    const m = zipfLoads(3, E, 1.2, 3, 500);
    assert.equal(m.data.length, 3 * E);
    const expected = Array.from({ length: E }, (_, r) => 500 / (r + 1) ** 1.2);
    const layers: number[][] = [];
    for (let l = 0; l < 3; l++) {
      const row = Array.from(m.data.subarray(l * E, (l + 1) * E));
      layers.push(row);
      assert.deepEqual(
        [...row].sort((a, b) => b - a),
        expected,
      );
    }
    // The permutation is drawn anew per layer.
    assert.ok(layers[0].join() !== layers[1].join() || layers[1].join() !== layers[2].join());
    assert.deepEqual(zipfLoads(3, E, 1.2, 3, 500), m);
    assert.notDeepEqual(zipfLoads(3, E, 1.2, 4, 500), m);
  });

  test("the permutations are uniform: every order of 3 experts about equally often", () => {
    const m = zipfLoads(6000, 3, 1, 8);
    const seen = new Map<string, number>();
    for (let l = 0; l < 6000; l++) {
      const key = Array.from(m.data.subarray(3 * l, 3 * l + 3)).join();
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    assert.equal(seen.size, 6);
    for (const c of seen.values()) assert.ok(c > 850 && c < 1150, `${[...seen.values()]}`);
  });

  test("exponent 0 gives every expert the same load", () => {
    assert.deepEqual(Array.from(zipfLoads(1, 4, 0, 1, 10).data), [10, 10, 10, 10]);
  });
});

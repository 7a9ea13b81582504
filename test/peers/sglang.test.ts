// SGLang's unit tests of balanced_packing (DeepSeek's algorithm in
// sglang.srt.eplb.eplb_algorithms.deepseek), re-expressed against eplb's greedyPacking:
// sgl-project/sglang test/registered/unit/eplb/test_balanced_packing.py at commit
// 82894fbb4f48aa94abb72f5039fc7bdda3a2e1fc. SGLang draws torch.rand weights; here a seeded
// generator draws them, so a failure reproduces.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { greedyPacking } from "../../src/blocks.js";
import { plainPacking } from "../helpers/plain-reference.js";

/** Seeded uniform [0, 1) rows (mulberry32). */
function rand(layers: number, n: number, seed: number): number[][] {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: layers }, () => Array.from({ length: n }, next));
}

/** balanced_packing on every row: pack index and rank in pack, as SGLang's function returns. */
function pack(weight: number[][], numPacks: number): { pack: number[][]; rank: number[][] } {
  const packs: number[][] = [];
  const ranks: number[][] = [];
  for (const row of weight) {
    const p = new Int32Array(row.length);
    const r = new Int32Array(row.length);
    greedyPacking(row, row.length, numPacks, p, r);
    packs.push(Array.from(p));
    ranks.push(Array.from(r));
  }
  return { pack: packs, rank: ranks };
}

/** SGLang's invariants: shapes, ranges, n / numPacks items per pack, each (pack, rank) once. */
function checkInvariants(weight: number[][], numPacks: number): void {
  const { pack: p, rank: r } = pack(weight, numPacks);
  const perPack = weight[0].length / numPacks;
  assert.equal(p.length, weight.length);
  assert.equal(r.length, weight.length);
  for (let l = 0; l < weight.length; l++) {
    assert.equal(p[l].length, weight[l].length);
    assert.equal(r[l].length, weight[l].length);
    const counts = new Array(numPacks).fill(0);
    const slots = new Set<string>();
    for (let i = 0; i < p[l].length; i++) {
      assert.ok(p[l][i] >= 0 && p[l][i] < numPacks, "pack index in range");
      assert.ok(r[l][i] >= 0 && r[l][i] < perPack, "rank in pack in range");
      counts[p[l][i]]++;
      slots.add(`${p[l][i]}:${r[l][i]}`);
    }
    assert.ok(
      counts.every((c) => c === perPack),
      `layer ${l}: pack counts ${counts}`,
    );
    assert.equal(slots.size, numPacks * perPack);
  }
}

describe("SGLang test_balanced_packing.py", () => {
  test("test_output_shapes / test_pack_index_range / test_rank_in_pack_range: 3 x 8 into 4, 2 x 6 into 3, 2 x 8 into 4", () => {
    checkInvariants(rand(3, 8, 1), 4);
    checkInvariants(rand(2, 6, 2), 3);
    checkInvariants(rand(2, 8, 3), 4);
  });

  test("test_each_pack_receives_equal_items / test_unique_pack_rank_slots: 4 x 8 and 3 x 8 into 4 packs", () => {
    checkInvariants(rand(4, 8, 4), 4);
    checkInvariants(rand(3, 8, 5), 4);
  });

  test("test_groups_per_pack_one_special_case: 6 items into 6 packs is a permutation, ranks 0", () => {
    const { pack: p, rank: r } = pack(rand(2, 6, 6), 6);
    for (const row of p) assert.deepEqual([...row].sort(), [0, 1, 2, 3, 4, 5]);
    for (const row of r) assert.ok(row.every((x) => x === 0));
  });

  test("test_single_layer: [3, 1, 4, 1] into 2 packs of 2", () => {
    checkInvariants([[3, 1, 4, 1]], 2);
  });

  test("test_uniform_weights_all_invariants: ones(3, 8) into 4 packs", () => {
    checkInvariants(
      [1, 2, 3].map(() => new Array(8).fill(1)),
      4,
    );
  });

  test("test_balance_property: [9, 1, 1, 1] into 2 packs weighs at most 10", () => {
    const { pack: p } = pack([[9, 1, 1, 1]], 2);
    const sums = [0, 0];
    [9, 1, 1, 1].forEach((w, i) => {
      sums[p[0][i]] += w;
    });
    assert.equal(Math.max(...sums), 10);
  });

  test("test_deterministic: the same input packs the same way twice", () => {
    const w = rand(3, 8, 7);
    assert.deepEqual(pack(w, 4), pack(w, 4));
  });

  test("test_many_layers: 16 x 8 into 4 packs", () => {
    checkInvariants(rand(16, 8, 8), 4);
  });

  test("every case above packs exactly as the reference's balanced_packing (plain transcription)", () => {
    for (const [w, k] of [
      [rand(3, 8, 1), 4],
      [rand(2, 6, 2), 3],
      [[[3, 1, 4, 1]], 2],
      [[[9, 1, 1, 1]], 2],
      [rand(16, 8, 8), 4],
    ] as [number[][], number][]) {
      const { pack: p, rank: r } = pack(w, k);
      w.forEach((row, l) => {
        const ref = plainPacking(row, k);
        assert.deepEqual(p[l], ref.pack);
        assert.deepEqual(r[l], ref.rank);
      });
    }
  });
});

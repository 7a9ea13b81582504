import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  greedyPacking,
  PackingWorkspace,
  resetPackTree,
  settlePack,
} from "../../../src/core/blocks/packing.js";
import { Random } from "../../../src/index.js";
import { plainPacking } from "../../helpers/plain-reference.js";

const FULL = 0x7fffffff;

function pack(w: number[], numPacks: number, ws?: PackingWorkspace) {
  const p = new Int32Array(w.length);
  const r = new Int32Array(w.length);
  greedyPacking(w, w.length, numPacks, p, r, ws);
  return { pack: Array.from(p), rank: Array.from(r) };
}

describe("greedyPacking", () => {
  test("the documented example: packs {4, 1} and {3, 2}", () => {
    assert.deepEqual(pack([4, 3, 2, 1], 2), { pack: [0, 1, 1, 0], rank: [0, 0, 1, 1] });
  });

  test("one item per pack: item i goes to pack i whatever the weights, as the reference does", () => {
    assert.deepEqual(pack([1, 9, 5], 3), { pack: [0, 1, 2], rank: [0, 0, 0] });
  });

  test("ties go to the lowest pack index, equal items in index order", () => {
    assert.deepEqual(pack([2, 2, 2, 2, 2, 2], 3), {
      pack: [0, 1, 2, 0, 1, 2],
      rank: [0, 0, 0, 1, 1, 1],
    });
  });

  test("pack weights add in float32 like the reference, at 31 packs (sorted queue) and 32 (tree)", () => {
    // Loads near 2^24 whose float32 sums round: a float64 sum would choose other packs.
    const ws = new PackingWorkspace();
    const rng = new Random(4);
    for (const numPacks of [2, 3, 31, 32, 33, 64]) {
      for (let run = 0; run < 20; run++) {
        const k = 2 + rng.int(4);
        const w = Array.from(
          { length: numPacks * k },
          () => 2 ** 24 + rng.int(8) - 4 + rng.int(3) / 2,
        );
        assert.deepEqual(pack(w, numPacks, ws), plainPacking(w, numPacks), `${numPacks} packs`);
      }
    }
  });
});

describe("the tournament tree over packs", () => {
  test("resetPackTree: the power of two at or above the pack count, pack 0 lightest", () => {
    for (const [numPacks, leaves] of [
      [1, 1],
      [3, 4],
      [4, 4],
      [5, 8],
      [32, 32],
    ]) {
      const bits = new Int32Array(2 * leaves).fill(-1);
      const packs = new Int32Array(2 * leaves).fill(-1);
      assert.equal(resetPackTree(bits, packs, numPacks), leaves);
      if (leaves > 1) assert.equal(packs[1], 0);
      // Padding leaves count as full, so they never win.
      for (let p = numPacks; p < leaves; p++) assert.equal(bits[leaves + p], FULL);
    }
  });

  test("the documented example: after pack 0 takes an item pack 1 is the lightest", () => {
    const bits = new Int32Array(8);
    const packs = new Int32Array(8);
    const leaves = resetPackTree(bits, packs, 3);
    settlePack(bits, packs, leaves, 0, 5);
    assert.equal(packs[1], 1);
  });

  test("the root is always the lightest pack, ties to the lowest index, full packs never", () => {
    const rng = new Random(9);
    for (let run = 0; run < 200; run++) {
      const numPacks = 1 + rng.int(40);
      const leaves = 2 ** Math.ceil(Math.log2(numPacks));
      const bits = new Int32Array(2 * leaves);
      const packs = new Int32Array(2 * leaves);
      const L = resetPackTree(bits, packs, numPacks);
      const key = new Array<number>(numPacks).fill(0);
      for (let step = 0; step < 3 * numPacks; step++) {
        const p = rng.int(numPacks);
        // Few distinct keys make ties; sometimes a pack is full.
        key[p] = rng.int(5) === 0 ? FULL : rng.int(4);
        settlePack(bits, packs, L, p, key[p]);
        let best = 0;
        for (let q = 1; q < numPacks; q++) if (key[q] < key[best]) best = q;
        assert.equal(bits[1], key[best]);
        assert.equal(packs[1], best, `keys ${key}`);
      }
    }
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  greedyPacking,
  greedyReplication,
  minMaxReplicaLoad,
  orderDescending,
  PackingWorkspace,
} from "../../src/index.js";

// Plain, obviously-correct transcriptions of the reference's loops: the fast paths (radix sort,
// heaps) must agree with them exactly, ties included.

function plainOrder(w: number[]): number[] {
  const f = w.map((x) => Math.fround(x));
  return f.map((_, i) => i).sort((a, b) => f[b] - f[a] || a - b);
}

function plainPacking(w: number[], numPacks: number): { pack: number[]; rank: number[] } {
  const n = w.length;
  const perPack = n / numPacks;
  const pack = new Array<number>(n).fill(-1);
  const rank = new Array<number>(n).fill(-1);
  if (perPack === 1) return { pack: w.map((_, i) => i), rank: w.map(() => 0) };
  const weights = new Array<number>(numPacks).fill(0);
  const items = new Array<number>(numPacks).fill(0);
  for (const i of plainOrder(w)) {
    let best = -1;
    for (let p = 0; p < numPacks; p++) {
      if (items[p] < perPack && (best < 0 || weights[p] < weights[best])) best = p;
    }
    pack[i] = best;
    rank[i] = items[best];
    weights[best] = Math.fround(weights[best] + Math.fround(w[i]));
    items[best]++;
  }
  return { pack, rank };
}

function plainReplication(w: number[], numReplicas: number) {
  const E = w.length;
  const phy = w.map((_, i) => i);
  const rank = w.map(() => 0);
  const count = w.map(() => 1);
  for (let r = E; r < numReplicas; r++) {
    let best = 0;
    for (let e = 1; e < E; e++) {
      if (
        Math.fround(Math.fround(w[e]) / count[e]) > Math.fround(Math.fround(w[best]) / count[best])
      )
        best = e;
    }
    phy.push(best);
    rank.push(count[best]);
    count[best]++;
  }
  return { phy, rank, count };
}

// Small integer-valued loads make ties frequent, which is where fast paths go wrong.
const loads = (min: number, max: number) =>
  fc.array(
    fc.oneof(fc.integer({ min: 0, max: 20 }), fc.double({ min: 0, max: 1e6, noNaN: true })),
    {
      minLength: min,
      maxLength: max,
    },
  );

describe("orderDescending", () => {
  test("sorts by float32 weight descending, ties by ascending index (matches a comparator sort)", () => {
    fc.assert(
      fc.property(loads(0, 300), (w) => {
        const order = new Int32Array(w.length);
        orderDescending(w, w.length, order);
        assert.deepEqual(Array.from(order), plainOrder(w));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("greedyPacking", () => {
  test("matches the reference's linear-scan packing exactly, ties included", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer(),
        (m, k, seed) => {
          const w = Array.from({ length: m * k }, (_, i) => ((seed ^ (i * 2654435761)) >>> 0) % 7);
          const pack = new Int32Array(m * k);
          const rank = new Int32Array(m * k);
          greedyPacking(w, m * k, m, pack, rank, new PackingWorkspace());
          const plain = plainPacking(w, m);
          assert.deepEqual(Array.from(pack), plain.pack);
          assert.deepEqual(Array.from(rank), plain.rank);
        },
      ),
      { numRuns: 2000 },
    );
  });
  test("every pack gets exactly n / numPacks items with ranks 0..k-1", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        loads(100, 100),
        (m, k, pool) => {
          const w = pool.slice(0, m * k);
          while (w.length < m * k) w.push(0);
          const pack = new Int32Array(m * k);
          const rank = new Int32Array(m * k);
          greedyPacking(w, m * k, m, pack, rank);
          const seen = new Set<string>();
          for (let i = 0; i < m * k; i++) {
            assert.ok(pack[i] >= 0 && pack[i] < m && rank[i] >= 0 && rank[i] < k);
            seen.add(`${pack[i]}:${rank[i]}`);
          }
          assert.equal(seen.size, m * k);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("greedyReplication", () => {
  test("matches the reference's argmax loop exactly, ties included", () => {
    fc.assert(
      fc.property(loads(1, 40), fc.integer({ min: 0, max: 60 }), (w, extra) => {
        const P = w.length + extra;
        const phy = new Int32Array(P);
        const rank = new Int32Array(P);
        const count = new Int32Array(w.length);
        greedyReplication(w, w.length, P, phy, rank, count);
        const plain = plainReplication(w, P);
        assert.deepEqual(Array.from(phy), plain.phy);
        assert.deepEqual(Array.from(rank), plain.rank);
        assert.deepEqual(Array.from(count), plain.count);
      }),
      { numRuns: 2000 },
    );
  });
  test("minMaxReplicaLoad is the largest per-replica load after water-filling", () => {
    assert.equal(minMaxReplicaLoad([90, 30, 40], 3, 5), 40);
    assert.equal(minMaxReplicaLoad([90, 30, 40], 3, 3), 90);
    assert.equal(minMaxReplicaLoad([0, 0], 2, 4), 0);
  });
});

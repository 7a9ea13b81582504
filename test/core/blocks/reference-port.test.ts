import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  greedyPacking,
  greedyReplication,
  minMaxReplicaLoad,
  orderDescending,
  PackingWorkspace,
} from "../../../src/blocks.js";
import { rebalanceExperts } from "../../../src/index.js";
import {
  plainOrder,
  plainPacking,
  plainRebalance,
  plainReplication,
} from "../../helpers/plain-reference.js";

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
  test("an adversarial spread (one huge outlier, many close values) still sorts exactly", () => {
    // Puts almost every item in one bucket, so the bucket sort gives up and another sort runs.
    for (const n of [40, 127, 128, 500]) {
      const w = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % n) / n);
      w[n >> 1] = 1e30;
      w[3] = 0;
      const order = new Int32Array(n);
      orderDescending(w, n, order);
      assert.deepEqual(Array.from(order), plainOrder(w));
    }
  });
  test("all-equal weights keep index order", () => {
    const order = new Int32Array(50);
    orderDescending(new Array(50).fill(3.5), 50, order);
    assert.deepEqual(
      Array.from(order),
      Array.from({ length: 50 }, (_, i) => i),
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
  test("with many packs (the tournament tree, from 32 packs) and one shared workspace it still matches the linear scan", () => {
    const ws = new PackingWorkspace();
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 80 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer(),
        fc.boolean(),
        (m, k, seed, real) => {
          // Few distinct values make ties; real values (and -0) exercise the float32 sums.
          const w = Array.from({ length: m * k }, (_, i) => {
            const h = ((seed ^ (i * 2654435761)) >>> 0) % 1000;
            return h === 7 ? -0 : real ? h / 7 + 1e-3 * (h % 13) : h % 5;
          });
          const pack = new Int32Array(m * k);
          const rank = new Int32Array(m * k);
          greedyPacking(w, m * k, m, pack, rank, ws);
          const plain = plainPacking(w, m);
          assert.deepEqual(Array.from(pack), plain.pack);
          assert.deepEqual(Array.from(rank), plain.rank);
        },
      ),
      { numRuns: 1500 },
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

describe("planDeepseek", () => {
  test("matches the plain reference port on random shapes with tie-heavy loads", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer(),
        (nodes, gpusPerNode, groupsPerNode, groupSize, extraPerNode, seed) => {
          const numGroups = nodes * groupsPerNode;
          const E = numGroups * groupSize;
          const numGpus = nodes * gpusPerNode;
          // Slots per node must be a multiple of GPUs per node and at least experts per node.
          let P = E + nodes * extraPerNode;
          while (P % numGpus !== 0) P++;
          const weight = [0, 1].map((l) =>
            Array.from({ length: E }, (_, i) => ((seed ^ ((i + 7 * l) * 2654435761)) >>> 0) % 5),
          );
          for (const [g, n] of [
            [numGroups, nodes],
            [1, 1],
            [numGroups, nodes + 1 === numGpus ? 1 : nodes],
          ]) {
            if (numGpus % n !== 0 || E % g !== 0) continue;
            const fast = rebalanceExperts(weight, P, g, n, numGpus, { policy: "deepseek" }).phy2log;
            assert.deepEqual(fast, plainRebalance(weight, P, g, n, numGpus));
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
  test("matches the plain reference port at deployment sizes, for 8, 9-64 and over 64 GPUs per node, with ties, zeros, -0 and float32 overflow", () => {
    // [experts, slots, groups, nodes, GPUs]: the node step picks the lightest GPU by a knockout
    // over eight, over blocks of eight up to 64, by a tree beyond; a node may get no extra slot
    // or more extra slots than experts; with one slot per GPU nothing is sorted.
    const shapes: Array<[number, number, number, number, number]> = [
      [256, 288, 8, 4, 32],
      [256, 320, 8, 8, 64],
      [384, 448, 1, 8, 64],
      [96, 120, 1, 1, 12],
      [256, 320, 1, 1, 80],
      [128, 128, 4, 2, 16],
      [8, 40, 2, 2, 4],
      [256, 288, 8, 18, 144],
      [64, 64, 1, 1, 64],
    ];
    const kinds = ["ties", "zeros", "spread", "overflow"] as const;
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const load = (kind: (typeof kinds)[number]): number => {
      const u = random();
      if (kind === "ties") return Math.floor(u * 4);
      if (kind === "zeros") return u < 0.6 ? (u < 0.3 ? -0 : 0) : Math.floor(u * 50);
      if (kind === "overflow") return u < 0.1 ? 1e39 * (1 + Math.floor(u * 30)) : u * 1000;
      return Math.exp(4 * (u - 0.5)) * (1 + (random() < 0.05 ? 1e6 : 0));
    };
    for (const [E, P, g, n, gpus] of shapes) {
      for (const kind of kinds) {
        const weight = [0, 1, 2].map(() => Array.from({ length: E }, () => load(kind)));
        const fast = rebalanceExperts(weight, P, g, n, gpus, { policy: "deepseek" });
        const where = `${E} experts, ${P} slots, ${g}/${n}/${gpus}, ${kind}`;
        const ranks: number[][] = [];
        assert.deepEqual(fast.phy2log, plainRebalance(weight, P, g, n, gpus, ranks), where);
        assert.deepEqual(
          [0, 1, 2].map((l) => Array.from(fast.placement.replicaRank.subarray(l * P, (l + 1) * P))),
          ranks,
          where,
        );
      }
    }
  });
});

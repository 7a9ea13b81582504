import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  AssignmentWorkspace,
  RelabelWorkspace,
  relabelLayer,
  solveAssignment,
} from "../../../src/core/blocks/assignment.js";
import { makeTopology } from "../../../src/index.js";
import { smallShape } from "../../helpers/instances.js";

/** The plain oracle: every permutation, the cheapest total. */
function bruteForce(cost: number[], n: number): number {
  const used = new Array<boolean>(n).fill(false);
  let best = Number.POSITIVE_INFINITY;
  const walk = (row: number, total: number): void => {
    // No pruning on partial sums: costs may be negative.
    if (row === n) {
      if (total < best) best = total;
      return;
    }
    for (let c = 0; c < n; c++) {
      if (used[c]) continue;
      used[c] = true;
      walk(row + 1, total + cost[row * n + c]);
      used[c] = false;
    }
  };
  walk(0, 0);
  return best;
}

const matrix = fc.integer({ min: 1, max: 6 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    cost: fc.array(fc.integer({ min: -50, max: 50 }), { minLength: n * n, maxLength: n * n }),
  }),
);

describe("solveAssignment: the Hungarian method against every permutation", () => {
  test("returns a permutation whose total is the brute-force minimum", () => {
    const ws = new AssignmentWorkspace();
    fc.assert(
      fc.property(matrix, ({ n, cost }) => {
        const a = new Int32Array(n);
        const total = solveAssignment(Float64Array.from(cost), n, a, ws);
        assert.deepEqual(
          [...a].sort((x, y) => x - y),
          Array.from({ length: n }, (_, i) => i),
        );
        let sum = 0;
        for (let r = 0; r < n; r++) sum += cost[r * n + a[r]];
        assert.equal(total, sum);
        assert.equal(total, bruteForce(cost, n));
      }),
      { numRuns: 400 },
    );
  });

  test("a reused workspace gives what a fresh one gives, whatever ran before", () => {
    const shared = new AssignmentWorkspace();
    fc.assert(
      fc.property(fc.array(matrix, { minLength: 1, maxLength: 4 }), (cases) => {
        for (const { n, cost } of cases) {
          const a = new Int32Array(n);
          const b = new Int32Array(n);
          const t1 = solveAssignment(Float64Array.from(cost), n, a, shared);
          const t2 = solveAssignment(Float64Array.from(cost), n, b);
          assert.equal(t1, t2);
          assert.deepEqual(a, b);
        }
      }),
      { numRuns: 200 },
    );
  });
});

const gpuKeys = (row: ArrayLike<number>, G: number, S: number): string[] =>
  Array.from({ length: G }, (_, g) =>
    Array.from({ length: S }, (_, j) => row[g * S + j])
      .sort((x, y) => x - y)
      .join(","),
  );

const layerCase = smallShape(8).map((shape) => {
  const { P, E, rng } = shape;
  const row = () => Int32Array.from({ length: P }, (_, i) => (i < E ? i : rng.int(E)));
  return { ...shape, previous: row(), fresh: row(), rand: (k: number) => rng.int(k) };
});

describe("relabelLayer: the fresh plan relabelled onto the previous one", () => {
  test("only labels change: each GPU of the result holds a distinct fresh GPU's experts", () => {
    fc.assert(
      fc.property(layerCase, ({ nodes, slotsPerGpu: S, G, P, E, previous, fresh }) => {
        const t = makeTopology(E, P, 1, nodes, G);
        const out = new Int32Array(P);
        const changed = relabelLayer(previous, 0, fresh, 0, t, out, 0, new RelabelWorkspace(t));
        assert.deepEqual(gpuKeys(out, G, S).sort(), gpuKeys(fresh, G, S).sort());
        let differ = 0;
        let asIs = 0;
        for (let i = 0; i < P; i++) {
          if (out[i] !== previous[i]) differ++;
          if (fresh[i] !== previous[i]) asIs++;
        }
        assert.equal(changed, differ);
        assert.ok(changed <= asIs, `relabelled ${changed} > as is ${asIs}`);
      }),
      { numRuns: 300 },
    );
  });

  test("a previous layer with its GPUs and slots shuffled is recovered exactly (0 slots change)", () => {
    fc.assert(
      fc.property(layerCase, ({ slotsPerGpu: S, G, P, E, previous, rand }) => {
        const t = makeTopology(E, P, 1, 1, G);
        const gpus = Array.from({ length: G }, (_, g) => g);
        for (let i = G - 1; i > 0; i--) {
          const j = rand(i + 1);
          [gpus[i], gpus[j]] = [gpus[j], gpus[i]];
        }
        const shuffled = new Int32Array(P);
        for (let g = 0; g < G; g++) {
          const slots = Array.from(previous.subarray(gpus[g] * S, (gpus[g] + 1) * S));
          slots.reverse();
          shuffled.set(slots, g * S);
        }
        const out = new Int32Array(P);
        assert.equal(relabelLayer(previous, 0, shuffled, 0, t, out, 0, new RelabelWorkspace(t)), 0);
        assert.deepEqual(out, previous);
      }),
      { numRuns: 300 },
    );
  });
});

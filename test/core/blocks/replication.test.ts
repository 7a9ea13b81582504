import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  greedyReplication,
  minMaxReplicaLoad,
  ReplicationWorkspace,
  waterFillCounts,
} from "../../../src/core/blocks/replication.js";

// The fast paths (a max-heap, a tournament tree over float32 bits) against the plain rule they
// implement: one replica each, then every further replica to the largest load per replica,
// lowest expert index on ties.

/** Plain water-filling by a full argmax per replica, in float64 or float32 division. */
function plainCounts(weights: number[], replicas: number, f32: boolean): number[] {
  const count = weights.map(() => 1);
  const per = (e: number) =>
    f32 ? Math.fround(Math.fround(weights[e]) / count[e]) : weights[e] / count[e];
  for (let r = weights.length; r < replicas; r++) {
    let best = 0;
    for (let e = 1; e < weights.length; e++) if (per(e) > per(best)) best = e;
    count[best]++;
  }
  return count;
}

const weightsAndReplicas = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: 1000 }),
      fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true }),
    ),
    { minLength: 1, maxLength: 24 },
  )
  .chain((weights) =>
    fc.record({
      weights: fc.constant(weights),
      replicas: fc.integer({ min: weights.length, max: 4 * weights.length }),
    }),
  );

describe("waterFillCounts and minMaxReplicaLoad", () => {
  test("the heap gives the plain argmax rule's counts (float64) and its largest load", () => {
    const ws = new ReplicationWorkspace();
    fc.assert(
      fc.property(weightsAndReplicas, ({ weights, replicas }) => {
        const count = new Int32Array(weights.length);
        const max = waterFillCounts(
          Float64Array.from(weights),
          weights.length,
          replicas,
          count,
          ws,
        );
        const plain = plainCounts(weights, replicas, false);
        assert.deepEqual([...count], plain);
        assert.equal(max, Math.max(...weights.map((w, e) => w / plain[e])));
        assert.equal(minMaxReplicaLoad(Float64Array.from(weights), weights.length, replicas), max);
      }),
      { numRuns: 500 },
    );
  });

  test("no other split of the replicas has a smaller largest load per replica", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        (weights, extra) => {
          const E = weights.length;
          const best = minMaxReplicaLoad(Float64Array.from(weights), E, E + extra);
          // Every way to give `extra` more replicas to E experts.
          const walk = (e: number, left: number, counts: number[]): number => {
            if (e === E - 1) {
              const c = [...counts, 1 + left];
              return Math.max(...weights.map((w, i) => w / c[i]));
            }
            let m = Number.POSITIVE_INFINITY;
            for (let k = 0; k <= left; k++)
              m = Math.min(m, walk(e + 1, left - k, [...counts, 1 + k]));
            return m;
          };
          assert.equal(best, walk(0, extra, []));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("greedyReplication (the reference's replicate_experts)", () => {
  test("the tournament tree gives the plain float32 argmax rule: counts, slots and ranks", () => {
    const ws = new ReplicationWorkspace();
    fc.assert(
      fc.property(weightsAndReplicas, ({ weights, replicas }) => {
        const E = weights.length;
        const phy = new Int32Array(replicas);
        const rank = new Int32Array(replicas);
        const count = new Int32Array(E);
        greedyReplication(Float64Array.from(weights), E, replicas, phy, rank, count, ws);
        // Replay the plain rule replica by replica: slot r goes to the argmax before it.
        const c = weights.map(() => 1);
        for (let r = 0; r < replicas; r++) {
          if (r < E) {
            assert.equal(phy[r], r);
            assert.equal(rank[r], 0);
            continue;
          }
          let best = 0;
          const per = (e: number) => Math.fround(Math.fround(weights[e]) / c[e]);
          for (let e = 1; e < E; e++) if (per(e) > per(best)) best = e;
          assert.equal(phy[r], best, `replica ${r}`);
          assert.equal(rank[r], c[best]);
          c[best]++;
        }
        assert.deepEqual([...count], c);
        assert.deepEqual([...count], plainCounts(weights, replicas, true));
      }),
      { numRuns: 500 },
    );
  });
});

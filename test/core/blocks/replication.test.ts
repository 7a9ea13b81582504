import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  minMaxReplicaLoad,
  ReplicationWorkspace,
  waterFillCounts,
} from "../../../src/core/blocks/replication.js";

// The float64 water-filling (a max-heap) against the plain rule it implements: one replica each,
// then every further replica to the largest load per replica, lowest expert index on ties. The
// reference's float32 greedyReplication is checked against its port in reference-port.test.ts.

/** Plain water-filling by a full argmax per replica (float64). */
function plainCounts(weights: number[], replicas: number): number[] {
  const count = weights.map(() => 1);
  const per = (e: number) => weights[e] / count[e];
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
        const plain = plainCounts(weights, replicas);
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

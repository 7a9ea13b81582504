import fc from "fast-check";
import { makeTopology, Random, type Topology } from "../../src/index.js";

/** One small layer: a cluster shape, its loads, and the seed that drew them. */
export interface SmallLayer {
  topology: Topology;
  /** One load per expert: lognormal integers, a tenth of them zero. */
  loads: Float64Array;
  /** Seed of the loads, for tests that draw more from it (drift, shuffles). */
  seed: number;
}

/**
 * Small one-layer problems (up to 3 nodes x 3 GPUs x 4 slots, any expert count that fits, two
 * thirds hierarchical where a group count allows it), for tests of one layer's planning and
 * migration steps. Integers throughout: `fc.double` draws mostly tiny values, which would make
 * most layers hold one expert.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(smallLayer(), ({ topology, loads }) => { ... }));
 * ```
 */
export function smallLayer(): fc.Arbitrary<SmallLayer> {
  return fc
    .record({
      nodes: fc.integer({ min: 1, max: 3 }),
      gpusPerNode: fc.integer({ min: 1, max: 3 }),
      slotsPerGpu: fc.integer({ min: 1, max: 4 }),
      expertsPercent: fc.integer({ min: 1, max: 100 }),
      groupChoice: fc.nat(),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    })
    .map((r) => {
      const G = r.nodes * r.gpusPerNode;
      const P = G * r.slotsPerGpu;
      const E = Math.max(1, Math.round((r.expertsPercent * P) / 100));
      const divisors: number[] = [];
      for (let d = 1; d <= E; d++) if (E % d === 0) divisors.push(d);
      const hierarchical = divisors.filter((d) => d % r.nodes === 0);
      const pool = r.groupChoice % 3 === 0 || hierarchical.length === 0 ? divisors : hierarchical;
      const topology = makeTopology(E, P, pool[r.groupChoice % pool.length], r.nodes, G);
      const rng = new Random(r.seed);
      const loads = Float64Array.from({ length: E }, () =>
        rng.next() < 0.1 ? 0 : Math.round(100 * rng.lognormal(1)),
      );
      return { topology, loads, seed: r.seed };
    });
}

import fc from "fast-check";
import { type LoadMatrix, makeTopology, Random, type Topology } from "../../src/index.js";

/** A random valid problem: a cluster shape and loads for it. */
export interface Instance {
  loads: LoadMatrix;
  topology: Topology;
  /** Seed of the loads, for tests that derive more random data (drift) from it. */
  seed: number;
}

/**
 * Random valid shapes (hierarchical and global: two thirds prefer a group count that divides by
 * the nodes) with lognormal loads of varying skew, zeros and ties included (loads are rounded
 * integers). Every precondition of the reference holds, so any failure is the planner's.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(instance(), ({ loads, topology }) => { ... }));
 * ```
 */
export function instance(
  options: { maxSlotsPerGpu?: number; maxLayers?: number } = {},
): fc.Arbitrary<Instance> {
  return fc
    .record({
      nodes: fc.integer({ min: 1, max: 4 }),
      gpusPerNode: fc.integer({ min: 1, max: 4 }),
      slotsPerGpu: fc.integer({ min: 1, max: options.maxSlotsPerGpu ?? 6 }),
      layers: fc.integer({ min: 1, max: options.maxLayers ?? 3 }),
      // A percentage, not fc.double: that draws mostly tiny values (one expert in ~92% of cases).
      expertsPercent: fc.integer({ min: 0, max: 100 }),
      groupChoice: fc.nat(),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      zeroShare: fc.constantFrom(0, 0, 0.2, 0.6, 1),
      sigma: fc.constantFrom(0.3, 1, 2),
    })
    .map((r) => {
      const numGpus = r.nodes * r.gpusPerNode;
      const numReplicas = numGpus * r.slotsPerGpu;
      const numExperts = Math.max(1, Math.round((r.expertsPercent * numReplicas) / 100));
      const divisors: number[] = [];
      for (let d = 1; d <= numExperts; d++) if (numExperts % d === 0) divisors.push(d);
      const hierarchical = divisors.filter((d) => d % r.nodes === 0);
      const pool = r.groupChoice % 3 === 0 || hierarchical.length === 0 ? divisors : hierarchical;
      const numGroups = pool[r.groupChoice % pool.length];
      const rng = new Random(r.seed);
      const data = new Float64Array(r.layers * numExperts);
      for (let i = 0; i < data.length; i++) {
        data[i] = rng.next() < r.zeroShare ? 0 : Math.round(100 * rng.lognormal(r.sigma));
      }
      return {
        loads: { layers: r.layers, experts: numExperts, data },
        topology: makeTopology(numExperts, numReplicas, numGroups, r.nodes, numGpus),
        seed: r.seed,
      };
    });
}

/** A small cluster shape with an expert count that fits its slots, and a seeded generator. */
export interface SmallShape {
  nodes: number;
  gpusPerNode: number;
  slotsPerGpu: number;
  /** GPUs, slots and experts. */
  G: number;
  P: number;
  E: number;
  rng: Random;
}

/**
 * Small random shapes (up to 3 nodes x 3 GPUs x 4 slots) for tests that draw placements
 * themselves, with a {@link Random} seeded by the case, so a shrunk case draws the same rows.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(smallShape(), ({ P, E, rng }) => { ... }));
 * ```
 */
export function smallShape(maxExperts = 10): fc.Arbitrary<SmallShape> {
  return fc
    .record({
      nodes: fc.integer({ min: 1, max: 3 }),
      gpusPerNode: fc.integer({ min: 1, max: 3 }),
      slotsPerGpu: fc.integer({ min: 1, max: 4 }),
      experts: fc.integer({ min: 1, max: maxExperts }),
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
    })
    .map(({ nodes, gpusPerNode, slotsPerGpu, experts, seed }) => {
      const G = nodes * gpusPerNode;
      const P = G * slotsPerGpu;
      return {
        nodes,
        gpusPerNode,
        slotsPerGpu,
        G,
        P,
        E: Math.min(experts, P),
        rng: new Random(seed),
      };
    });
}

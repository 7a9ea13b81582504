import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { placementViolation, policyNames, rebalanceExperts } from "../../src/index.js";

/** Random valid cluster shapes and loads (zeros and ties included). */
const instance = fc
  .record({
    nodes: fc.integer({ min: 1, max: 4 }),
    gpusPerNode: fc.integer({ min: 1, max: 4 }),
    slotsPerGpu: fc.integer({ min: 1, max: 5 }),
    layers: fc.integer({ min: 1, max: 3 }),
    expertsFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    groupChoice: fc.nat(),
    seed: fc.integer(),
    zeroShare: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map((r) => {
    const numGpus = r.nodes * r.gpusPerNode;
    const numReplicas = numGpus * r.slotsPerGpu;
    const numExperts = Math.max(1, Math.round(r.expertsFraction * numReplicas));
    const divisors = [];
    for (let d = 1; d <= numExperts; d++) if (numExperts % d === 0) divisors.push(d);
    const numGroups = divisors[r.groupChoice % divisors.length];
    let s = r.seed >>> 0;
    const next = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
    const weight = Array.from({ length: r.layers }, () =>
      Array.from({ length: numExperts }, () =>
        next() < r.zeroShare ? 0 : Math.floor(next() * 50) * (next() < 0.5 ? 1 : 37.5),
      ),
    );
    return { weight, numReplicas, numGroups, numNodes: r.nodes, numGpus };
  });

for (const policy of policyNames()) {
  describe(`policy ${policy}: every plan is a valid placement`, () => {
    test("every expert has a replica, counts sum to the slots, log2phy inverts phy2log, locality holds", () => {
      fc.assert(
        fc.property(instance, ({ weight, numReplicas, numGroups, numNodes, numGpus }) => {
          const r = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus, { policy });
          const E = weight[0].length;
          assert.equal(placementViolation(r.placement), null);
          assert.equal(r.phy2log.length, weight.length);
          const width = Math.max(...r.logcnt.flat());
          for (let l = 0; l < weight.length; l++) {
            assert.equal(r.phy2log[l].length, numReplicas);
            assert.equal(
              r.logcnt[l].reduce((a, b) => a + b, 0),
              numReplicas,
            );
            for (let e = 0; e < E; e++) {
              assert.ok(r.logcnt[l][e] >= 1, `expert ${e} has a replica`);
              const slots = r.log2phy[l][e];
              assert.equal(slots.length, width);
              for (let k = 0; k < width; k++) {
                if (k < r.logcnt[l][e]) assert.equal(r.phy2log[l][slots[k]], e);
                else assert.equal(slots[k], -1);
              }
            }
            if (numGroups % numNodes === 0) {
              const slotsPerNode = numReplicas / numNodes;
              const groupSize = E / numGroups;
              const nodeOfGroup = new Map<number, number>();
              r.phy2log[l].forEach((e, s) => {
                const g = Math.floor(e / groupSize);
                const n = Math.floor(s / slotsPerNode);
                assert.equal(nodeOfGroup.get(g) ?? n, n, `group ${g} stays on one node`);
                nodeOfGroup.set(g, n);
              });
            }
          }
        }),
        { numRuns: 3000 },
      );
    });

    test("plans are deterministic", () => {
      fc.assert(
        fc.property(instance, ({ weight, numReplicas, numGroups, numNodes, numGpus }) => {
          const a = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus, { policy });
          const b = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus, { policy });
          assert.deepEqual(a.phy2log, b.phy2log);
        }),
        { numRuns: 300 },
      );
    });
  });
}

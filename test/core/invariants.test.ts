import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { placementViolation, policyNames, rebalanceExperts } from "../../src/index.js";
import { instance } from "../helpers/instances.js";

for (const policy of policyNames()) {
  describe(`policy ${policy}: every plan is a valid placement`, () => {
    test("every expert has a replica, counts sum to the slots, log2phy inverts phy2log, locality holds", () => {
      fc.assert(
        fc.property(instance({ maxSlotsPerGpu: 5 }), ({ loads, topology }) => {
          const { numReplicas, numGroups, numNodes, numGpus } = topology;
          const r = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, { policy });
          const E = loads.experts;
          assert.equal(placementViolation(r.placement), null);
          assert.equal(r.phy2log.length, loads.layers);
          const width = Math.max(...r.logcnt.flat());
          for (let l = 0; l < loads.layers; l++) {
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
            if (topology.hierarchical) {
              const nodeOfGroup = new Map<number, number>();
              r.phy2log[l].forEach((e, s) => {
                const g = Math.floor(e / topology.expertsPerGroup);
                const n = Math.floor(s / topology.slotsPerNode);
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
        fc.property(instance(), ({ loads, topology }) => {
          const { numReplicas, numGroups, numNodes, numGpus } = topology;
          const a = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, { policy });
          const b = rebalanceExperts(loads, numReplicas, numGroups, numNodes, numGpus, { policy });
          assert.deepEqual(a.phy2log, b.phy2log);
        }),
        { numRuns: 300 },
      );
    });
  });
}

// Slots kept on a GPU (issue 14 item 4): an expert that stays on a GPU keeps one of its previous
// slots there, so no transfer copies an expert within its own GPU.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { keepGpuSlots, preserveGpuSlots } from "../../../src/blocks.js";
import { Random, rebalanceExperts } from "../../../src/index.js";
import { instance } from "../../helpers/instances.js";

describe("keepGpuSlots / preserveGpuSlots", () => {
  test("reorders within GPUs only, keeps the most slots, and returns the slots still changed", () => {
    const next = new Int32Array([1, 5, 0, 4, 6, 2, 7, 3]);
    const changed = keepGpuSlots([0, 1, 2, 3, 4, 5, 6, 7], 0, next, 0, 8, 4);
    assert.deepEqual(Array.from(next), [0, 1, 5, 4, 3, 2, 6, 7]);
    assert.equal(changed, 4);
  });

  test("an expert with fewer replicas on a GPU than before keeps its first previous slots", () => {
    assert.deepEqual(preserveGpuSlots([[3, 2, 0, 1]], 1, [[0, 1, 0, 1]]), [[0, 1, 3, 2]]);
  });

  test("empty slots (-1) are never kept and may be filled", () => {
    assert.deepEqual(preserveGpuSlots([[2, 0, 1, 3]], 2, [[0, -1, 1, 3]]), [[0, 2, 1, 3]]);
  });

  test("shapes that do not fit are EplbInputErrors", () => {
    assert.throws(() => preserveGpuSlots([[0, 1, 2]], 2, [[0, 1, 2]]), /numGpus \(2\) must divide/);
    assert.throws(() => preserveGpuSlots([[0, 1]], 1, [[0, 1, 2]]), /previous\[0\]\.length/);
    assert.throws(() => preserveGpuSlots([[0, 1]], 1, []), /previous/);
  });
});

describe("rebalancing keeps an expert that stays on a GPU in one of its previous slots", () => {
  test("regression: a second replica of an expert a GPU keeps is a local copy, the kept one stays put", () => {
    // deepseek plans GPU 2 = [1, 2] then [1, 1]: expert 1 keeps slot 4, slot 5 copies it locally.
    const now = rebalanceExperts([[17, 506, 128]], 8, 1, 2, 4, { policy: "deepseek" });
    const r = rebalanceExperts([[19.5, 762.4, 137.7]], 8, 1, 2, 4, {
      policy: "deepseek",
      previous: now.phy2log,
    });
    assert.deepEqual(now.phy2log, [[1, 1, 1, 2, 1, 2, 1, 0]]);
    assert.deepEqual(r.phy2log, [[1, 1, 0, 2, 1, 1, 1, 1]]);
    assert.equal(r.migration?.transfers.local, 2);
  });

  test("random shapes and drifted loads: local copies only for extra replicas, every staying expert in an old slot", () => {
    fc.assert(
      fc.property(
        instance(),
        fc.constantFrom("balanced", "deepseek"),
        ({ loads, topology: t, seed }, policy) => {
          const { numReplicas: P, numGroups, numNodes, numGpus: G, slotsPerGpu: S } = t;
          const now = rebalanceExperts(loads, P, numGroups, numNodes, G, { policy });
          const rng = new Random(seed + 1);
          const next = { ...loads, data: loads.data.map((v) => v * rng.lognormal(0.2)) };
          const r = rebalanceExperts(next, P, numGroups, numNodes, G, {
            policy,
            previous: now.phy2log,
          });
          // A local copy is right only for an extra replica of an expert the GPU already held
          // (a plan with a duplicate, which deepseek's may have): never for a staying one.
          let extraCopies = 0;
          for (let l = 0; l < loads.layers; l++) {
            for (let g = 0; g < G; g++) {
              const before = now.phy2log[l].slice(g * S, (g + 1) * S);
              const after = r.phy2log[l].slice(g * S, (g + 1) * S);
              for (const e of new Set(before)) {
                const more =
                  after.filter((x) => x === e).length - before.filter((x) => x === e).length;
                extraCopies += Math.max(0, more);
              }
            }
          }
          assert.ok((r.migration?.transfers.local ?? 0) <= extraCopies);
          for (let l = 0; l < loads.layers; l++) {
            for (let g = 0; g < G; g++) {
              const before = now.phy2log[l].slice(g * S, (g + 1) * S);
              const after = r.phy2log[l].slice(g * S, (g + 1) * S);
              for (const e of new Set(before)) {
                if (!after.includes(e)) continue;
                assert.ok(
                  before.some((x, j) => x === e && after[j] === e),
                  `layer ${l} GPU ${g}: expert ${e} stays but left every one of its slots`,
                );
              }
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

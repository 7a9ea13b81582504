// Tests of core/policies/deepseek-node.ts: the reference's replication and packing of one node
// (one sort, a heap over the top experts) against the plain transcription of its loops.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  DeepseekNodeWorkspace,
  planDeepseekNode,
} from "../../../src/core/policies/deepseek-node.js";
import { Random } from "../../../src/index.js";
import { plainPacking, plainReplication } from "../../helpers/plain-reference.js";

/** The node's plan by the plain loops: slot -> [expert, rank], and counts per expert. */
function plainNode(
  weights: number[],
  experts: number[],
  numReplicas: number,
  gpus: number,
): { phy: number[]; rank: number[]; count: number[] } {
  const local = experts.map((x) => Math.fround(weights[x]));
  const rep = plainReplication(local, numReplicas);
  const loads = rep.phy.map((i) => Math.fround(local[i] / rep.count[i]));
  const packed = plainPacking(loads, gpus);
  const S = numReplicas / gpus;
  const phy = new Array<number>(numReplicas);
  const rank = new Array<number>(numReplicas);
  for (let p = 0; p < numReplicas; p++) {
    const slot = packed.pack[p] * S + packed.rank[p];
    phy[slot] = experts[rep.phy[p]];
    rank[slot] = rep.rank[p];
  }
  return { phy, rank, count: rep.count };
}

describe("planDeepseekNode", () => {
  test("the documented example", () => {
    const ws = new DeepseekNodeWorkspace(4, 6, 2);
    const phy = new Int32Array(6);
    const rank = new Int32Array(6);
    const cnt = new Int32Array(4);
    const experts = new Int32Array([0, 1, 2, 3]);
    planDeepseekNode(new Float64Array([10, 40, 20, 30]), 0, experts, 0, phy, rank, 0, cnt, 0, ws);
    assert.deepEqual([...phy], [1, 1, 0, 2, 3, 3]);
    assert.deepEqual([...rank], [0, 1, 0, 0, 0, 1]);
    assert.deepEqual([...cnt], [1, 2, 1, 2]);
  });

  test("property: equals the plain loops, at offsets, with ties, zeros, and one workspace reused", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 8 }),
        fc.constantFrom("ties", "lognormal", "huge"),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (percent, gpus, slotsPerGpu, kind, seed) => {
          const P = gpus * slotsPerGpu;
          const numExperts = Math.max(1, Math.round((percent * P) / 100));
          const rng = new Random(seed);
          // The node's experts are a shuffled half of a layer of 2 * numExperts, at an offset.
          const layerExperts = 2 * numExperts;
          const all = Array.from({ length: layerExperts }, (_, i) => i);
          for (let i = all.length - 1; i > 0; i--) {
            const j = rng.int(i + 1);
            [all[i], all[j]] = [all[j], all[i]];
          }
          const experts = all.slice(0, numExperts);
          const weights = Array.from({ length: layerExperts }, () =>
            kind === "ties"
              ? rng.int(4)
              : kind === "huge"
                ? rng.next() < 0.3
                  ? 1e39
                  : rng.lognormal(2)
                : rng.lognormal(1.5),
          );
          const loadOffset = 3;
          const loads = new Float64Array(loadOffset + layerExperts);
          loads.set(weights, loadOffset);
          const expertBase = 2;
          const expertList = new Int32Array(expertBase + numExperts).fill(-9);
          expertList.set(experts, expertBase);
          const slotBase = 5;
          const phy = new Int32Array(slotBase + P).fill(-9);
          const rank = new Int32Array(slotBase + P).fill(-9);
          const cnt = new Int32Array(1 + layerExperts).fill(-9);
          const ws = new DeepseekNodeWorkspace(numExperts, P, gpus);
          // Twice on one workspace: nothing of the first plan may leak into the second.
          for (let run = 0; run < 2; run++) {
            planDeepseekNode(
              loads,
              loadOffset,
              expertList,
              expertBase,
              phy,
              rank,
              slotBase,
              cnt,
              1,
              ws,
            );
          }
          const want = plainNode(weights, experts, P, gpus);
          assert.deepEqual([...phy.subarray(slotBase)], want.phy);
          assert.deepEqual([...rank.subarray(slotBase)], want.rank);
          for (let i = 0; i < numExperts; i++) assert.equal(cnt[1 + experts[i]], want.count[i]);
          // Only the node's slots and experts are written.
          assert.deepEqual([...phy.subarray(0, slotBase)], [-9, -9, -9, -9, -9]);
          const others = all.slice(numExperts);
          for (const x of others) assert.equal(cnt[1 + x], -9);
        },
      ),
      { seed: 15, numRuns: 300 },
    );
  });
});

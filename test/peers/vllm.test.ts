// vLLM's own tests of the EPLB algorithm, re-expressed against eplb:
// vllm-project/vllm tests/distributed/test_eplb_algo.py at commit
// 030ea52effcb05071543c8c42b8f0145e94cee43 (DefaultEplbPolicy.rebalance_experts,
// compute_logical_maps, preserve_intragpu_slots). Each case keeps vLLM's inputs and asserts what
// vLLM asserts; both policies run where vLLM only asserts properties, `deepseek` where it asserts
// exact maps (vLLM's default policy is DeepSeek's algorithm).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { preserveGpuSlots, vllmBalance } from "../../src/blocks.js";
import {
  EplbInputError,
  placementFromPhy2log,
  type RebalanceResult,
  rebalanceExperts,
  toReferencePlacement,
} from "../../src/index.js";

const POLICIES = ["deepseek", "balanced"] as const;

/** What vLLM checks of every plan: shapes, ids in range, counts >= 1 summing to the slots. */
function checkShapes(r: RebalanceResult, layers: number, experts: number, replicas: number): void {
  assert.equal(r.phy2log.length, layers);
  for (const row of r.phy2log) {
    assert.equal(row.length, replicas);
    for (const e of row) assert.ok(e >= 0 && e < experts, `expert id ${e} in 0..${experts - 1}`);
  }
  assert.equal(r.log2phy.length, layers);
  for (const layer of r.log2phy) assert.equal(layer.length, experts);
  assert.equal(r.logcnt.length, layers);
  for (const counts of r.logcnt) {
    assert.equal(counts.length, experts);
    assert.ok(counts.every((c) => c >= 1));
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      replicas,
    );
  }
}

function argmax(row: number[]): number {
  return row.indexOf(Math.max(...row));
}

describe("vLLM test_eplb_algo.py", () => {
  test("test_eplb_load_stats_reduce_across_ranks: tokens [[100, 0, 0, 0], [100, 0, 0, 0]] give avg 50, max 200, balancedness 0.25", () => {
    const b = vllmBalance(new Float64Array([100, 0, 0, 0, 100, 0, 0, 0]), 2, 4);
    assert.equal(b.avgTokens, 50);
    assert.equal(b.maxTokens, 200);
    assert.equal(b.balancedness, 0.25);
  });

  test("test_basic_rebalance: DeepSeek's README example, exact phy2log and logcnt", () => {
    const weight = [
      [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
      [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
    ];
    for (const policy of POLICIES)
      checkShapes(rebalanceExperts(weight, 16, 4, 2, 8, { policy }), 2, 12, 16);
    const r = rebalanceExperts(weight, 16, 4, 2, 8, { policy: "deepseek" });
    assert.deepEqual(r.phy2log, [
      [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
      [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
    ]);
    assert.deepEqual(r.logcnt, [
      [1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
      [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1],
    ]);
  });

  for (const policy of POLICIES) {
    test(`test_single_gpu_case (${policy}): every expert mapped once on one GPU`, () => {
      const r = rebalanceExperts([[10, 20, 30, 40]], 4, 1, 1, 1, { policy });
      checkShapes(r, 1, 4, 4);
      assert.deepEqual(new Set(r.phy2log[0]), new Set([0, 1, 2, 3]));
    });

    test(`test_equal_weights (${policy}): no replication, one replica each`, () => {
      const r = rebalanceExperts([[50, 50, 50, 50, 50, 50, 50, 50]], 8, 2, 2, 4, { policy });
      checkShapes(r, 1, 8, 8);
      assert.ok(r.logcnt[0].every((c) => c === 1));
    });

    test(`test_extreme_weight_imbalance (${policy}): the hot expert gets more replicas`, () => {
      const r = rebalanceExperts([[1000, 1, 1, 1, 1, 1, 1, 1]], 12, 2, 2, 4, { policy });
      checkShapes(r, 1, 8, 12);
      assert.ok(r.logcnt[0][0] > r.logcnt[0][1]);
    });

    test(`test_multiple_layers (${policy}): three layers, each sums to the slots`, () => {
      const weight = [
        [10, 20, 30, 40, 50, 60],
        [60, 50, 40, 30, 20, 10],
        [25, 25, 25, 25, 25, 25],
      ];
      checkShapes(rebalanceExperts(weight, 8, 2, 2, 4, { policy }), 3, 6, 8);
    });

    test(`test_parameter_validation (${policy}): 3 groups on 2 nodes take the global path; 7 slots on 4 GPUs are refused`, () => {
      // The reference never asks groups to divide the experts on its global path.
      const r = rebalanceExperts([[10, 20, 30, 40]], 8, 3, 2, 4, { policy });
      checkShapes(r, 1, 4, 8);
      assert.equal(r.topology.hierarchical, false);
      assert.throws(
        () => rebalanceExperts([[10, 20, 30, 40]], 7, 2, 2, 4, { policy }),
        (e: unknown) => e instanceof EplbInputError && e.parameter === "numGpus",
      );
    });

    test(`test_small_scale_hierarchical (${policy}): the hottest expert gets at least 2 replicas`, () => {
      const weight = [[100, 50, 200, 75, 150, 25, 300, 80]];
      const r = rebalanceExperts(weight, 12, 4, 2, 4, { policy });
      checkShapes(r, 1, 8, 12);
      assert.ok(r.logcnt[0][argmax(weight[0])] >= 2);
    });

    test(`test_global_load_balance_fallback (${policy}): 3 groups on 2 nodes plan globally`, () => {
      const r = rebalanceExperts([[10, 20, 30, 40, 50, 60]], 8, 3, 2, 4, { policy });
      checkShapes(r, 1, 6, 8);
      assert.equal(r.topology.hierarchical, false);
    });

    test(`test_device_compatibility (${policy}): 6 slots on 2 GPUs of one node`, () => {
      checkShapes(rebalanceExperts([[10, 20, 30, 40]], 6, 2, 1, 2, { policy }), 1, 4, 6);
    });

    test(`test_additional_cases, large setup (${policy}): 16 experts on 24 slots, 8 GPUs, 4 nodes`, () => {
      const weight = [[50, 100, 75, 120, 90, 60, 80, 110, 40, 70, 95, 85, 65, 55, 45, 35]];
      checkShapes(rebalanceExperts(weight, 24, 8, 4, 8, { policy }), 1, 16, 24);
    });
  }

  for (const policy of POLICIES) {
    test(`test_additional_cases, decreasing and increasing loads (${policy}): the hottest expert gets at least 2 replicas`, () => {
      const weight = [
        [200, 150, 100, 50, 25, 12],
        [12, 25, 50, 100, 150, 200],
      ];
      const r = rebalanceExperts(weight, 10, 3, 1, 2, { policy });
      checkShapes(r, 2, 6, 10);
      for (let l = 0; l < 2; l++) assert.ok(r.logcnt[l][argmax(weight[l])] >= 2);
    });
  }

  test("test_compute_logical_maps_with_negative_indices: -1 slots are empty, log2phy lists used slots only", () => {
    const p = placementFromPhy2log(
      [
        [0, 1, -1, 2, 3, -1],
        [3, -1, 2, 1, 0, -1],
      ],
      4,
      "phy2log",
      true,
    );
    const ref = toReferencePlacement(p);
    assert.deepEqual(ref.logcnt, [
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    // Width 1: the largest replica count; no -1 in log2phy.
    assert.deepEqual(ref.log2phy, [
      [[0], [1], [3], [4]],
      [[4], [3], [2], [0]],
    ]);
  });

  // test_preserve_intragpu_slots: (GPUs, slots per GPU, old phy2log, new phy2log).
  const slotCases: [string, number, number, number[], number[]][] = [
    ["simple", 2, 4, [0, 1, 2, 3, 4, 5, 6, 7], [1, 5, 0, 4, 6, 2, 7, 3]],
    ["duplicates", 2, 5, [0, 1, 0, 2, 3, 4, 5, 6, 1, 2], [0, 5, 4, 0, 1, 6, 2, 3, 2, 1]],
    [
      "skewed_expert",
      3,
      4,
      [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3],
      [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0],
    ],
  ];
  for (const [name, gpus, S, old, next] of slotCases) {
    test(`test_preserve_intragpu_slots[${name}]: each GPU keeps its (expert, rank) pairs and a remaining expert its first old slot`, () => {
      const [post] = preserveGpuSlots([next], gpus, [old]);
      assert.equal(post.length, next.length);
      const ranks = (row: number[]) => {
        const seen = new Map<number, number>();
        return row.map((e) => {
          const r = seen.get(e) ?? 0;
          seen.set(e, r + 1);
          return r;
        });
      };
      const nextRank = ranks(next);
      const postRank = ranks(post);
      for (let g = 0; g < gpus; g++) {
        const seg = (row: number[]) => row.slice(g * S, (g + 1) * S);
        const pairs = (row: number[], rank: number[]) =>
          seg(row)
            .map((e, i) => `${e}:${seg(rank)[i]}`)
            .sort();
        assert.deepEqual(pairs(post, postRank), pairs(next, nextRank), `GPU ${g} pairs`);
        const oldSeg = seg(old);
        for (const e of new Set(oldSeg.filter((x) => seg(next).includes(x)))) {
          const at = oldSeg.indexOf(e);
          assert.equal(seg(post)[at], e, `expert ${e} stays at old slot ${at} of GPU ${g}`);
          const newRanks = seg(next)
            .map((x, i) => (x === e ? seg(nextRank)[i] : -1))
            .filter((r) => r >= 0);
          assert.ok(newRanks.includes(seg(postRank)[at]));
        }
      }
    });
  }

  test("slot-preserving step inside eplb: rebalancing from vLLM's 'simple' old map never copies an expert within a GPU", () => {
    const old = [[0, 1, 2, 3, 4, 5, 6, 7]];
    const weight = [[80, 10, 10, 10, 60, 50, 10, 10]];
    for (const policy of POLICIES) {
      const r = rebalanceExperts(weight, 8, 1, 1, 2, { policy, previous: old });
      assert.equal(r.migration?.transfers.local, 0);
      for (let g = 0; g < 2; g++) {
        for (let j = 0; j < 4; j++) {
          const e = old[0][g * 4 + j];
          const stays = r.phy2log[0].slice(g * 4, g * 4 + 4).includes(e);
          if (stays)
            assert.equal(r.phy2log[0][g * 4 + j], e, `expert ${e} keeps slot ${j} of GPU ${g}`);
        }
      }
    }
  });
});

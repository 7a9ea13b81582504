// vllm-ascend's unit tests of its dynamic EPLB policy, re-expressed against eplb where eplb has
// the same step: vllm-project/vllm-ascend tests/ut/eplb/core/policy/test_policy_dynamic_ep.py at
// commit 56670c70ffd46c75ebf9796aedb891907fa9c1c7 (DynamicEplb). vllm-ascend works on an
// expert table [layers][NPUs][slots per NPU] and per-slot workloads; eplb's phy2log is that table
// flattened per layer, and per-expert loads are the per-slot workloads summed (add_redundant).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { preserveGpuSlots } from "../../src/blocks.js";
import {
  EplbInputError,
  gpuLoads,
  placementFromPhy2log,
  rebalanceExperts,
  toLoadMatrix,
} from "../../src/index.js";

describe("vllm-ascend test_policy_dynamic_ep.py", () => {
  test("test_add_redundant_basic + test_rebalance_experts_normal: from table [[0,1],[1,0]] and workloads [[2,3],[4,1]], the new table keeps the shape", () => {
    const table = [[0, 1, 1, 0]]; // 1 layer, 2 NPUs x 2 slots
    const workload = [[2, 3, 4, 1]];
    // add_redundant: expert 0 served 2 + 1, expert 1 served 3 + 4.
    const perExpert = [[0, 0]];
    table[0].forEach((e, s) => {
      perExpert[0][e] += workload[0][s];
    });
    assert.deepEqual(perExpert, [[3, 7]]);
    for (const policy of ["deepseek", "balanced"]) {
      const r = rebalanceExperts(perExpert, 4, 1, 1, 2, { policy, previous: table });
      assert.equal(r.phy2log.length, 1);
      assert.equal(r.phy2log[0].length, 4);
      assert.ok(r.logcnt[0].every((c) => c >= 1));
      // The hot expert (7) holds more slots than the cold one (3).
      assert.ok(r.logcnt[0][1] >= r.logcnt[0][0]);
    }
  });

  test("test_calculate_max_heat_per_layer: the hottest NPU per layer is [7, 4]", () => {
    // One expert per slot, so each slot's workload is its expert's load.
    const p = placementFromPhy2log(
      [
        [0, 1, 2, 3],
        [0, 1, 2, 3],
      ],
      4,
    );
    const g = gpuLoads(
      toLoadMatrix([
        [1, 2, 3, 4],
        [2, 2, 1, 1],
      ]),
      p,
      { numGpus: 2 },
    );
    assert.deepEqual([Math.max(g[0], g[1]), Math.max(g[2], g[3])], [7, 4]);
  });

  test("test_constraint_expert_local_exchange: experts that stay on an NPU go back to their slots", () => {
    // Current [[0,1],[2,3]], new [[1,0],[3,2]]: only the order within each NPU changed.
    assert.deepEqual(preserveGpuSlots([[1, 0, 3, 2]], 2, [[0, 1, 2, 3]]), [[0, 1, 2, 3]]);
  });

  test("test_rebalance_experts_exceptions: no NPUs, an empty table and a table that does not fit are refused", () => {
    const isInput = (e: unknown) => e instanceof EplbInputError;
    assert.throws(() => rebalanceExperts([[2, 3]], 2, 1, 1, 0), isInput);
    assert.throws(() => rebalanceExperts([[]], 2, 1, 1, 1), isInput);
    // A previous table with another slot count than the plan (the expert count mismatch case).
    assert.throws(() => rebalanceExperts([[3, 7]], 4, 1, 1, 2, { previous: [[0, 1, 1]] }), isInput);
  });
});

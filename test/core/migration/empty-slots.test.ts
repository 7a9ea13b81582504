// Empty slots (-1 in phy2log), as vLLM's elastic expert parallelism writes them: read,
// evaluated, converted and rebalanced from (issue 14 item 2).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EplbInputError,
  evaluatePlacement,
  gpuLoads,
  placementFromPhy2log,
  placementViolation,
  rebalanceExperts,
  toLoadMatrix,
} from "../../../src/index.js";
import { placementFromValue } from "../../../src/io/interpret.js";
import { formatPlacement } from "../../../src/io/writers.js";

const loads = toLoadMatrix([[50, 40, 30, 20, 10, 5]]);
const withEmpty = [[0, 1, 2, -1, 3, 4, 5, -1]];

describe("empty slots (-1)", () => {
  test("plans never hold them: placementFromPhy2log refuses -1 unless allowEmpty", () => {
    assert.throws(
      () => placementFromPhy2log(withEmpty, 6),
      (e: unknown) =>
        e instanceof EplbInputError && /must be an expert id in 0\.\.5$/.test(e.message),
    );
    const p = placementFromPhy2log(withEmpty, 6, "phy2log", true);
    assert.equal(placementViolation(p), null);
    assert.deepEqual(Array.from(p.replicaRank), [0, 0, 0, -1, 0, 0, 0, -1]);
  });

  test("the readers accept -1 and still refuse other negatives", () => {
    const p = placementFromValue({ physical_to_logical_map: withEmpty }, "map.json", {
      limit: 1e6,
    });
    assert.deepEqual(Array.from(p.phy2log), withEmpty[0]);
    assert.throws(
      () =>
        placementFromValue({ physical_to_logical_map: [[0, 1, -2, 2]] }, "map.json", {
          limit: 1e6,
        }),
      /is -2: slots must hold expert ids >= 0 or -1 \(an empty slot\)/,
    );
    // A map no engine pads (an SGLang dump's) refuses -1.
    assert.throws(
      () =>
        placementFromValue({ physical_to_logical_map: withEmpty }, "dump.json", {
          limit: 1e6,
          allowEmpty: false,
        }),
      /physical_to_logical_map\[0\]\[3\] is -1: slots must hold expert ids >= 0$/,
    );
  });

  test("an empty slot serves nothing: GPU loads, balancedness and duplicates count used slots only", () => {
    const p = placementFromPhy2log(withEmpty, 6, "phy2log", true);
    assert.deepEqual(Array.from(gpuLoads(loads, p, { numGpus: 2 })), [120, 35]);
    const m = evaluatePlacement(loads, p, { numGpus: 2 });
    assert.equal(m.maxGpuLoad[0], 120);
    assert.equal(m.duplicateGpus, 0);
  });

  test("vllm and deepseek files hold empty slots; sglang, vllm-ascend and trtllm files refuse them", () => {
    const p = placementFromPhy2log(withEmpty, 6, "phy2log", true);
    const vllm = JSON.parse(formatPlacement(p, "vllm"));
    assert.deepEqual(vllm.physical_to_logical_map, withEmpty);
    assert.deepEqual(vllm.logical_replica_count, [[1, 1, 1, 1, 1, 1]]);
    assert.ok(!vllm.logical_to_physical_map.flat(2).includes(3), "slot 3 is nobody's");
    assert.deepEqual(JSON.parse(formatPlacement(p, "deepseek")).phy2log, withEmpty);
    for (const format of ["sglang", "vllm-ascend", "trtllm"] as const) {
      assert.throws(
        () => formatPlacement(p, format, { numGpus: 2 }),
        /layer 0 slot 3 empty \(-1\).*must fill every slot for this format/,
      );
    }
  });

  test("rebalancing from a placement with empty slots fills them and counts them as changes", () => {
    for (const policy of ["balanced", "deepseek"]) {
      const r = rebalanceExperts(loads, 8, 1, 1, 2, { policy, previous: withEmpty });
      const m = r.migration;
      assert.ok(m);
      assert.ok(!r.phy2log[0].includes(-1));
      assert.equal(placementViolation(r.placement), null);
      let changed = 0;
      for (let s = 0; s < 8; s++) if (r.phy2log[0][s] !== withEmpty[0][s]) changed++;
      assert.equal(m.slotsChanged, changed);
      assert.ok(changed >= 2, "both empty slots are filled");
      // Every changed slot is one transfer from a slot that held the expert.
      assert.equal(m.transfers.local + m.transfers.intraNode + m.transfers.interNode, changed);
      assert.equal(m.maxLoadBefore[0], 120);
      assert.ok(m.maxLoadAfter[0] <= 80);
    }
  });

  test("a zero move budget still fills the empty slots (a plan uses every slot)", () => {
    const r = rebalanceExperts(loads, 8, 1, 1, 2, { previous: withEmpty, moveBudget: 0 });
    assert.ok(!r.phy2log[0].includes(-1));
    for (let s = 0; s < 8; s++) {
      if (withEmpty[0][s] >= 0) assert.equal(r.phy2log[0][s], withEmpty[0][s]);
    }
  });

  test("hierarchical placements on several nodes with empty slots are refused in one line", () => {
    assert.throws(
      () => rebalanceExperts(loads, 8, 2, 2, 2, { previous: [[0, 1, 2, -1, 3, 4, 5, -1]] }),
      (e: unknown) =>
        e instanceof EplbInputError &&
        e.message ===
          "previous[0][3] (-1) is an empty slot: rebalancing from a placement with empty slots needs one node or the global policy (numGroups % numNodes != 0)",
    );
  });
});

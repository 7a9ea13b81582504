import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { duplicateGpuCount } from "../../../src/blocks.js";
import { firstGpuDuplicate, separateDuplicates } from "../../../src/core/blocks/distinct.js";
import {
  EplbInputError,
  makeTopology,
  type Placement,
  placementFromPhy2log,
  placementViolation,
  planDeepseek,
  rebalanceExperts,
} from "../../../src/index.js";
import { instance } from "../../helpers/instances.js";

function layerRow(p: Placement, l: number): number[] {
  return Array.from(p.phy2log.subarray(l * p.numReplicas, (l + 1) * p.numReplicas));
}

describe("firstGpuDuplicate", () => {
  test("finds the first (layer, GPU) holding an expert twice, or null", () => {
    const p = placementFromPhy2log(
      [
        [0, 1, 2, 0],
        [2, 1, 0, 0],
      ],
      3,
    );
    assert.deepEqual(firstGpuDuplicate(p, 2), { layer: 1, gpu: 1, expert: 0 });
    assert.equal(firstGpuDuplicate(p, 4), null);
    assert.throws(() => firstGpuDuplicate(p, 3), /numGpus \(3\) must divide the slots per layer/);
  });
});

describe("separateDuplicates: no GPU holds an expert twice", () => {
  test("a duplicate moves to a GPU lacking the expert, counts unchanged", () => {
    const t = makeTopology(3, 4, 1, 1, 2);
    const p = placementFromPhy2log([[0, 0, 1, 2]], 3);
    const q = separateDuplicates(
      { layers: 1, experts: 3, data: new Float64Array([8, 1, 1]) },
      p,
      t,
    );
    assert.deepEqual(layerRow(q, 0), [0, 1, 0, 2]);
    assert.deepEqual(Array.from(q.logcnt), [2, 1, 1]);
    assert.equal(placementViolation(q), null);
  });

  test("when no swap exists, the slot takes another expert of its scope", () => {
    // Expert 0 holds 3 of 4 slots on 2 GPUs: no swap can separate a third replica.
    const t = makeTopology(2, 4, 1, 1, 2);
    const p = placementFromPhy2log([[0, 0, 0, 1]], 2);
    const q = separateDuplicates({ layers: 1, experts: 2, data: new Float64Array([9, 1]) }, p, t);
    assert.equal(firstGpuDuplicate(q, 2), null);
    assert.deepEqual(Array.from(q.logcnt), [2, 2]);
    assert.equal(placementViolation(q), null);
  });

  test("refuses a GPU with more slots than its scope has experts", () => {
    const t = makeTopology(2, 4, 1, 1, 1);
    const p = placementFromPhy2log([[0, 1, 0, 1]], 2);
    assert.throws(
      () => separateDuplicates({ layers: 1, experts: 2, data: new Float64Array([1, 1]) }, p, t),
      (e: unknown) =>
        e instanceof EplbInputError &&
        /slotsPerGpu \(4\) leaves GPU 0 of layer 0 no way to avoid holding expert \d twice/.test(
          e.message,
        ),
    );
  });

  test("random plans: valid, duplicate-free, untouched layers kept, groups stay on their node", () => {
    fc.assert(
      fc.property(instance(), ({ loads, topology: t }) => {
        const input = planDeepseek(loads, t);
        const scopes = t.hierarchical ? t.numNodes : 1;
        const scopeExperts = t.numExperts / scopes;
        if (t.slotsPerGpu > scopeExperts) {
          // Every GPU repeats an expert: nothing to repair it with.
          assert.throws(() => separateDuplicates(loads, input, t), EplbInputError);
          return;
        }
        const out = separateDuplicates(loads, input, t);
        assert.equal(placementViolation(out), null);
        assert.equal(firstGpuDuplicate(out, t.numGpus), null);
        const S = t.slotsPerGpu;
        const slotsPerScope = t.numReplicas / scopes;
        for (let l = 0; l < loads.layers; l++) {
          const before = layerRow(input, l);
          const after = layerRow(out, l);
          const single = placementFromPhy2log([before], t.numExperts);
          if (duplicateGpuCount(single, t) === 0) assert.deepEqual(after, before);
          for (let n = 0; n < scopes; n++) {
            const had = new Set(before.slice(n * slotsPerScope, (n + 1) * slotsPerScope));
            for (const e of after.slice(n * slotsPerScope, (n + 1) * slotsPerScope)) {
              assert.ok(had.has(e), `layer ${l}: expert ${e} moved off its node ${n}`);
            }
          }
          assert.equal(after.length, t.numGpus * S);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("rebalanceExperts({ distinctPerGpu })", () => {
  // One hot expert: the reference gives it 3 replicas and puts two on one GPU.
  const loads = [[600, 10, 10, 10, 10, 10]];

  test("deepseek's exact plan with a duplicate is refused, naming layer, GPU and expert", () => {
    const plain = rebalanceExperts(loads, 8, 1, 1, 2, { policy: "deepseek" });
    const dup = firstGpuDuplicate(plain.placement, 2);
    assert.ok(dup !== null, "the example must have a duplicate");
    assert.throws(
      () => rebalanceExperts(loads, 8, 1, 1, 2, { policy: "deepseek", distinctPerGpu: true }),
      new RegExp(
        `policy \\("deepseek"\\) puts expert ${dup.expert} twice on GPU ${dup.gpu} of layer ${dup.layer} .*--policy balanced`,
      ),
    );
  });

  test("deepseek without a duplicate is returned unchanged", () => {
    const even = [[10, 20, 30, 40]];
    const a = rebalanceExperts(even, 4, 1, 1, 2, { policy: "deepseek" });
    const b = rebalanceExperts(even, 4, 1, 1, 2, { policy: "deepseek", distinctPerGpu: true });
    assert.deepEqual(b.phy2log, a.phy2log);
  });

  test("the balanced policy's plans never hold an expert twice on a GPU", () => {
    fc.assert(
      fc.property(instance(), ({ loads: l, topology: t }) => {
        const scopes = t.hierarchical ? t.numNodes : 1;
        fc.pre(t.slotsPerGpu <= t.numExperts / scopes);
        const r = rebalanceExperts(l, t.numReplicas, t.numGroups, t.numNodes, t.numGpus, {
          distinctPerGpu: true,
        });
        assert.equal(firstGpuDuplicate(r.placement, t.numGpus), null);
        assert.equal(placementViolation(r.placement), null);
      }),
      { numRuns: 150 },
    );
  });
});

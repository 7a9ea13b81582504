import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { layerView, planLayers } from "../../../src/blocks.js";
import {
  EplbInputError,
  getPolicy,
  makeTopology,
  planDeepseek,
  policyNames,
  toLoadMatrix,
} from "../../../src/index.js";
import { instance } from "../../helpers/instances.js";

describe("planLayers (the one per-layer driver)", () => {
  const t = makeTopology(4, 6, 1, 1, 2);
  const loads = toLoadMatrix([
    [10, 40, 20, 30],
    [5, 1, 1, 9],
    [3, 3, 8, 0],
  ]);

  test("plans only the layers of its range, at their offsets, into the given placement", () => {
    const whole = planDeepseek(loads, t);
    const seen: number[] = [];
    const out = planDeepseek({ layers: 3, experts: 4, data: new Float64Array(12) }, t);
    out.phy2log.fill(-7);
    planLayers(
      loads,
      t,
      (v) => {
        seen.push(v.loadOffset);
        const one = planDeepseek(
          { layers: 1, experts: 4, data: v.loads.slice(v.loadOffset, v.loadOffset + 4) },
          t,
        );
        v.phy2log.set(one.phy2log, v.slotOffset);
        return 0;
      },
      out,
      { from: 1, to: 3 },
    );
    assert.deepEqual(seen, [4, 8]);
    assert.deepEqual(Array.from(out.phy2log.subarray(0, 6)), [-7, -7, -7, -7, -7, -7]);
    assert.deepEqual(Array.from(out.phy2log.subarray(6)), Array.from(whole.phy2log.subarray(6)));
  });

  test("refuses a range outside the layers and a placement of another shape", () => {
    const noop = () => 0;
    assert.throws(() => planLayers(loads, t, noop, undefined, { from: 2, to: 1 }), EplbInputError);
    assert.throws(() => planLayers(loads, t, noop, undefined, { to: 4 }), /range\.to/);
    const other = planDeepseek(loads, makeTopology(4, 8, 1, 1, 2));
    assert.throws(() => planLayers(loads, t, noop, other), /must match the topology/);
  });

  test("layerView points at a layer's loads, slots and counts", () => {
    const p = planDeepseek(loads, t);
    const v = layerView(loads, p, 2);
    assert.deepEqual([v.loadOffset, v.slotOffset, v.expertOffset], [8, 12, 8]);
  });
});

describe("policies one layer at a time", () => {
  test("every policy's layer planner, run by planLayers, gives the policy's plan, split among workers or not", () => {
    fc.assert(
      fc.property(instance({ maxLayers: 4 }), fc.nat(), ({ loads, topology }, cut) => {
        for (const name of policyNames()) {
          const policy = getPolicy(name);
          assert.ok(policy.layerPlanner, `${name} has a layer planner`);
          const options = name === "balanced" ? { relaxedHierarchy: true } : {};
          const whole = policy.plan(loads, topology, options);
          // Two "workers", each with its own planner (workspace), on either side of a cut.
          const k = cut % (loads.layers + 1);
          const out = planLayers(
            loads,
            topology,
            policy.layerPlanner(topology, options),
            undefined,
            {
              to: k,
            },
          );
          planLayers(loads, topology, policy.layerPlanner(topology, options), out, { from: k });
          assert.deepEqual(out.phy2log, whole.phy2log, name);
          assert.deepEqual(out.replicaRank, whole.replicaRank, name);
          assert.deepEqual(out.logcnt, whole.logcnt, name);
        }
      }),
      { numRuns: 40 },
    );
  });
});

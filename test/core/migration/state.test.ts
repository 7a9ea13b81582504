// Tests of core/migration/state.ts: one layer's migration state and the moves that keep its
// bookkeeping (counts, GPU loads, slot lists, changed slots, home nodes) consistent.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { smoothMaxGpuLoad } from "../../../src/core/migration/metrics.js";
import { RELAXED, STRICT } from "../../../src/core/migration/options.js";
import {
  applyRecount,
  applySwap,
  exactMax,
  loadState,
  placedSmoothMax,
  restorable,
  smoothMax,
  touchRecount,
  writeLayer,
} from "../../../src/core/migration/state.js";
import { EplbInputError } from "../../../src/core/model/errors.js";
import { createPlacement, placementFromPhy2log } from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { Random } from "../../../src/index.js";
import {
  assertConsistent,
  driftedLayer,
  loadCase,
  loadLayer,
  stateGpuLoads,
  stateSmoothMax,
} from "../../helpers/migration-state.js";
import { assertRefused } from "../../helpers/refused.js";

describe("loadState", () => {
  test("a small layer: counts, GPU loads, homes and the largest load", () => {
    // 2 nodes x 1 GPU x 3 slots; groups {0, 1} and {2, 3}.
    const t = makeTopology(4, 6, 2, 2, 2);
    const { ws } = loadLayer(t, [12, 3, 6, 6], [2, 3, 3, 0, 1, 0]);
    assert.equal(ws.mode, STRICT);
    assert.deepEqual([...ws.count], [2, 1, 1, 2]);
    assert.deepEqual([...ws.gpuLoad], [12, 15]);
    assert.deepEqual([...ws.home], [1, 1, 0, 0]);
    assert.deepEqual([...ws.homeCount], [2, 1, 1, 2]);
    assert.equal(ws.changed, 0);
    assert.equal(exactMax(ws), 15);
    assert.equal(ws.meanLoad, 13.5);
    assertConsistent(ws);
  });

  test("a later state is counted against the previous one; lost slots make an expert restorable", () => {
    const t = makeTopology(3, 4, 1, 1, 2);
    const { ws, loads } = loadLayer(t, [6, 2, 2], [0, 1, 0, 2]);
    loadState(ws, loads, 0, Int32Array.from([9, 0, 1, 2, 2]), 1, false);
    assert.deepEqual([...ws.phy], [0, 1, 2, 2]);
    assert.deepEqual([...ws.prev], [0, 1, 0, 2]);
    assert.equal(ws.changed, 1);
    assert.equal(restorable(ws, 0), true);
    assert.equal(restorable(ws, 1), false);
    assert.equal(restorable(ws, 2), false);
    assertConsistent(ws);
  });

  test("a previous layer that breaks the strict contract is refused, naming the layer", () => {
    const t = makeTopology(4, 6, 2, 2, 2);
    assertRefused(
      () => loadLayer(t, [1, 1, 1, 1], [0, 2, 3, 1, 2, 3]),
      EplbInputError,
      /^previous\[0\] \("group 0"\) has replicas on nodes 0 and 1/,
      "previous[0]",
    );
  });
});

describe("moves keep the bookkeeping consistent", () => {
  test("property: random swaps and recounts, checked against a recount from scratch", () => {
    fc.assert(
      fc.property(driftedLayer(), fc.integer({ min: 0, max: 2 ** 30 }), (c, seed) => {
        const { ws } = loadCase(c);
        const { numReplicas: P, numExperts: E } = ws.topology;
        // Global moves may break the hierarchy: homes are only bookkept, not enforced, here.
        const rng = new Random(seed);
        for (let step = 0; step < 12; step++) {
          const b = rng.int(P);
          if (rng.next() < 0.5) applySwap(ws, rng.int(P), b);
          else {
            const y = rng.int(E);
            if (y === ws.phy[b] || ws.count[ws.phy[b]] < 2) continue;
            const x = ws.phy[b];
            const before = stateGpuLoads(ws);
            // touchRecount's deltas are exactly the recount's load changes.
            touchRecount(ws, b, x, y);
            const touched = new Map<number, number>();
            for (let i = 0; i < ws.touchedCount; i++) {
              touched.set(ws.touched[i], ws.delta[ws.touched[i]]);
            }
            applyRecount(ws, b, y);
            const after = stateGpuLoads(ws);
            for (let g = 0; g < ws.topology.numGpus; g++) {
              const d = after[g] - before[g];
              const want = touched.get(g) ?? 0;
              assert.ok(Math.abs(d - want) <= 1e-9 * Math.max(1, after[g]), `delta of GPU ${g}`);
            }
          }
          assertConsistent(ws);
        }
        const max = Math.max(...stateGpuLoads(ws));
        assert.ok(Math.abs(exactMax(ws) - max) <= 1e-9 * Math.max(1, max));
        const smooth = stateSmoothMax(ws);
        assert.ok(Math.abs(smoothMax(ws) - smooth) <= 1e-9 * Math.max(1, smooth));
      }),
      { seed: 15, numRuns: 150 },
    );
  });

  test("relaxed mode: a swap off the home node updates the expert's home count", () => {
    // 2 nodes x 1 GPU x 3 slots; group 0 = {0, 1} on node 0 with a spare replica of 0.
    const t = makeTopology(4, 6, 2, 2, 2);
    const { ws } = loadLayer(t, [8, 2, 3, 3], [0, 1, 0, 2, 3, 2], true);
    assert.equal(ws.mode, RELAXED);
    assert.equal(ws.homeCount[0], 2);
    applySwap(ws, 2, 5);
    assert.equal(ws.homeCount[0], 1);
    assert.equal(ws.homeCount[2], 1);
    assert.equal(ws.changed, 2);
    assertConsistent(ws);
  });
});

describe("placedSmoothMax and writeLayer", () => {
  test("placedSmoothMax is smoothMaxGpuLoad at the workspace's temperature, largest load kept", () => {
    const t = makeTopology(4, 8, 1, 1, 4);
    const { ws, loads } = loadLayer(t, [40, 10, 20, 30], [0, 1, 0, 2, 3, 2, 3, 0]);
    const p = placementFromPhy2log(
      [
        [3, 2, 0, 1],
        [0, 1, 2, 3, 0, 3, 2, 0],
      ].slice(1),
      4,
    );
    const got = placedSmoothMax(ws, p, 0);
    const want = smoothMaxGpuLoad(loads.data, 0, p.phy2log, 0, p.logcnt, 0, 4, 8);
    assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
    // GPU loads [40/3 + 10, 20/2 + 30/2, 40/3 + 30/2, 20/2 + 40/3]: the largest is 85/3.
    assert.ok(Math.abs(ws.loadMax - 85 / 3) < 1e-12);
  });

  test("writeLayer writes the row with ranks in slot order and the counts", () => {
    const out = createPlacement(2, 4, 3);
    writeLayer(out, 1, Int32Array.from([2, 0, 2, 1]), 3, 4, new Int32Array(3));
    assert.deepEqual([...out.phy2log.subarray(4)], [2, 0, 2, 1]);
    assert.deepEqual([...out.replicaRank.subarray(4)], [0, 0, 1, 0]);
    assert.deepEqual([...out.logcnt.subarray(3)], [1, 1, 2]);
    assert.deepEqual([...out.logcnt.subarray(0, 3)], [0, 0, 0]);
  });
});

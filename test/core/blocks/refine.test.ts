import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { excessCopies, refineScope, repairDuplicates } from "../../../src/core/blocks/refine.js";
import {
  packScope,
  recomputeScopeLoads,
  replicaCap,
  ScopeWorkspace,
  scopeMaxLoad,
} from "../../../src/core/blocks/scope.js";
import { Random } from "../../../src/index.js";
import { randomScope } from "../../helpers/scopes.js";

/** Each GPU's experts as a sorted list: what refinement may reorder but must keep per expert. */
function perExpert(ws: ScopeWorkspace): number[] {
  const held = new Array<number>(ws.numExperts).fill(0);
  for (let s = 0; s < ws.numGpus * ws.slotsPerGpu; s++) held[ws.slotExpert[s]]++;
  return held;
}

function copies(ws: ScopeWorkspace, g: number, e: number, skip = -1): number {
  let m = 0;
  for (let s = g * ws.slotsPerGpu; s < (g + 1) * ws.slotsPerGpu; s++) {
    if (s !== skip && ws.slotExpert[s] === e) m++;
  }
  return m;
}

/** Replicas of each expert on its home node, counted from the slots. */
function homeCounts(ws: ScopeWorkspace): number[] {
  const h = new Array<number>(ws.numExperts).fill(0);
  for (let s = 0; s < ws.numGpus * ws.slotsPerGpu; s++) {
    const e = ws.slotExpert[s];
    if (Math.floor(Math.floor(s / ws.slotsPerGpu) / ws.gpusPerNode) === ws.home[e]) h[e]++;
  }
  return h;
}

/** Plain check of the cap and home rules for exchanging slots a (GPU ga) and b (GPU gb). */
function allowed(ws: ScopeWorkspace, a: number, ga: number, b: number, gb: number): boolean {
  const ea = ws.slotExpert[a];
  const eb = ws.slotExpert[b];
  if (copies(ws, gb, ea, b) >= replicaCap(ws.count[ea], ws.numGpus)) return false;
  if (copies(ws, ga, eb, a) >= replicaCap(ws.count[eb], ws.numGpus)) return false;
  const gpn = ws.gpusPerNode;
  if (gpn > 0 && Math.floor(ga / gpn) !== Math.floor(gb / gpn)) {
    const hc = homeCounts(ws);
    if (Math.floor(ga / gpn) === ws.home[ea] && hc[ea] < 2) return false;
    if (Math.floor(gb / gpn) === ws.home[eb] && hc[eb] < 2) return false;
  }
  return true;
}

/** The documented scope: GPU 0 holds {60, 50}, GPU 1 holds {20, 10}. */
function unbalanced(): ScopeWorkspace {
  const ws = new ScopeWorkspace();
  ws.reset(4, 2, 2);
  ws.weight.set([60, 50, 20, 10]);
  ws.count.set([1, 1, 1, 1]);
  packScope(ws);
  ws.slotExpert.set([0, 1, 2, 3]);
  recomputeScopeLoads(ws);
  return ws;
}

describe("refineScope", () => {
  test("the documented example: exchanging 60 and 20 balances {60, 50} | {20, 10} to 70 | 70", () => {
    const ws = unbalanced();
    assert.equal(refineScope(ws, 70, 100), 1);
    assert.deepEqual(Array.from(ws.gpuLoad.subarray(0, 2)), [70, 70]);
  });

  test("does nothing at or below the target, with no iterations, or on one GPU", () => {
    const ws = unbalanced();
    assert.equal(refineScope(ws, 110, 100), 0);
    assert.equal(refineScope(ws, 0, 0), 0);
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 4)), [0, 1, 2, 3]);
    const one = new ScopeWorkspace();
    one.reset(2, 1, 2);
    one.weight.set([5, 3]);
    one.count.set([1, 1]);
    packScope(one);
    assert.equal(refineScope(one, 0, 100), 0);
  });

  test("counts an expert swapped back onto its home node (the only exchange the home rules allow)", () => {
    // Nodes {GPU 0, 1} and {GPU 2, 3}. Experts H (200, 2 replicas), X (20, 2 replicas) and A
    // (60) live on node 0; B (50), C and D (55) on node 1. GPU 0 {H, A} is hottest at 160; with
    // GPU 2 {B, X} only H for X keeps every expert on its home node: X comes home.
    const ws = new ScopeWorkspace();
    ws.reset(6, 4, 2, 2);
    ws.weight.set([200, 20, 60, 50, 55, 55]);
    ws.count.set([2, 2, 1, 1, 1, 1]);
    ws.home.set([0, 0, 0, 1, 1, 1]);
    packScope(ws);
    ws.slotExpert.set([0, 2, 0, 1, 3, 1, 4, 5]);
    recomputeScopeLoads(ws);
    assert.deepEqual(Array.from(ws.homeCount.subarray(0, 6)), [2, 1, 1, 1, 1, 1]);
    assert.ok(refineScope(ws, 0, 100) >= 1);
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 2)).sort(), [1, 2], "X moved to GPU 0");
    assert.deepEqual(Array.from(ws.homeCount.subarray(0, 6)), homeCounts(ws));
  });

  test("keeps every slot count, cap and home rule, never raises the max, and ends where no exchange with the hottest GPU helps", () => {
    const rng = new Random(14);
    for (let run = 0; run < 400; run++) {
      const ws = randomScope(rng, run % 2 === 1);
      const { numGpus: G, slotsPerGpu: S } = ws;
      packScope(ws);
      repairDuplicates(ws);
      const held = perExpert(ws);
      const excess = excessCopies(ws);
      const before = scopeMaxLoad(ws);
      refineScope(ws, 0, 100000);
      assert.deepEqual(perExpert(ws), held);
      assert.ok(excessCopies(ws) <= excess);
      assert.ok(scopeMaxLoad(ws) <= before);
      const loads = Array.from(ws.gpuLoad.subarray(0, G));
      recomputeScopeLoads(ws);
      Array.from(ws.gpuLoad.subarray(0, G)).forEach((l, g) => {
        assert.ok(Math.abs(l - loads[g]) <= 1e-9 * Math.max(1, l), `GPU ${g}: ${l} vs ${loads[g]}`);
      });
      if (ws.gpusPerNode > 0) {
        const hc = homeCounts(ws);
        assert.ok(hc.every((h) => h >= 1));
        assert.deepEqual(Array.from(ws.homeCount.subarray(0, ws.numExperts)), hc);
      }
      // Local optimum: no allowed exchange between the hottest GPU (the last at the max) and a
      // lighter one moves a replica load difference strictly inside the gap.
      let h = 0;
      for (let g = 1; g < G; g++) if (loads[g] >= loads[h]) h = g;
      const tol = loads[h] * 1e-12;
      for (let g = 0; g < G; g++) {
        if (g === h) continue;
        const gap = loads[h] - loads[g];
        for (let a = h * S; a < h * S + S; a++) {
          for (let b = g * S; b < g * S + S; b++) {
            const d = ws.replicaLoad[ws.slotExpert[a]] - ws.replicaLoad[ws.slotExpert[b]];
            if (d > tol && d < gap - tol && allowed(ws, a, h, b, g)) {
              assert.fail(`run ${run}: exchanging slots ${a} and ${b} would lower GPU ${h}`);
            }
          }
        }
      }
    }
  });
});

describe("repairDuplicates and excessCopies", () => {
  test("the documented example: one of expert 0's two copies on GPU 0 moves to GPU 1", () => {
    const ws = new ScopeWorkspace();
    ws.reset(2, 2, 2);
    ws.weight.set([10, 8]);
    ws.count.set([2, 2]);
    packScope(ws);
    assert.equal(excessCopies(ws), 0);
    ws.slotExpert.set([0, 0, 1, 1]);
    assert.equal(excessCopies(ws), 2);
    recomputeScopeLoads(ws);
    assert.equal(repairDuplicates(ws), 0);
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 4)), [1, 0, 0, 1]);
    assert.equal(excessCopies(ws), 0);
  });

  test("excessCopies counts copies beyond the cap per GPU and expert, as a plain count does", () => {
    const rng = new Random(15);
    for (let run = 0; run < 200; run++) {
      const ws = randomScope(rng, false);
      const { numExperts: n, numGpus: G, slotsPerGpu: S } = ws;
      for (let s = 0; s < G * S; s++) ws.slotExpert[s] = rng.int(n);
      let plain = 0;
      for (let g = 0; g < G; g++) {
        for (let e = 0; e < n; e++)
          plain += Math.max(0, copies(ws, g, e) - replicaCap(ws.count[e], G));
      }
      assert.equal(excessCopies(ws), plain);
    }
  });

  test("after a shuffle that breaks the caps it repairs them, keeping the replicas and the loads consistent", () => {
    const rng = new Random(16);
    let repaired = 0;
    for (let run = 0; run < 300; run++) {
      const ws = randomScope(rng, false);
      const { numGpus: G, slotsPerGpu: S } = ws;
      packScope(ws);
      const slots = ws.slotExpert.subarray(0, G * S);
      for (let s = slots.length - 1; s > 0; s--) {
        const t = rng.int(s + 1);
        [slots[s], slots[t]] = [slots[t], slots[s]];
      }
      recomputeScopeLoads(ws);
      const held = perExpert(ws);
      const broken = excessCopies(ws);
      const left = repairDuplicates(ws);
      assert.deepEqual(perExpert(ws), held);
      if (left === 0) assert.equal(excessCopies(ws), 0);
      assert.ok(excessCopies(ws) <= broken);
      if (broken > 0 && left === 0 && S >= 2) repaired++;
      const loads = Array.from(ws.gpuLoad.subarray(0, G));
      recomputeScopeLoads(ws);
      Array.from(ws.gpuLoad.subarray(0, G)).forEach((l, g) => {
        assert.ok(Math.abs(l - loads[g]) <= 1e-9 * Math.max(1, l));
      });
    }
    assert.ok(repaired > 50, `${repaired} scopes repaired`);
  });
});

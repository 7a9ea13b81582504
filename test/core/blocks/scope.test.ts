import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  packScope,
  recomputeScopeLoads,
  replicaCap,
  ScopeWorkspace,
  scopeLowerBound,
  scopeMaxLoad,
} from "../../../src/core/blocks/scope.js";
import { Random } from "../../../src/index.js";
import { randomScope } from "../../helpers/scopes.js";

/** The documented scope: 3 experts (90 in two replicas, 30, 40) on 2 GPUs of 2 slots. */
function example(): ScopeWorkspace {
  const ws = new ScopeWorkspace();
  ws.reset(3, 2, 2);
  ws.weight.set([90, 30, 40]);
  ws.count.set([2, 1, 1]);
  return ws;
}

describe("replicaCap", () => {
  test("1 while an expert has no more replicas than GPUs, else as few per GPU as possible", () => {
    assert.equal(replicaCap(3, 8), 1);
    assert.equal(replicaCap(8, 8), 1);
    assert.equal(replicaCap(9, 8), 2);
    assert.equal(replicaCap(16, 8), 2);
    assert.equal(replicaCap(17, 8), 3);
    assert.equal(replicaCap(5, 1), 5);
  });
});

describe("scopeLowerBound and scopeMaxLoad", () => {
  test("the documented example: max(160 / 2, 90 / 2, 40) = 80, and the replica loads refreshed", () => {
    const ws = example();
    assert.equal(scopeLowerBound(ws), 80);
    assert.deepEqual(Array.from(ws.replicaLoad.subarray(0, 3)), [45, 30, 40]);
    ws.count.set([1, 2, 1]); // now expert 0's single replica binds
    assert.equal(scopeLowerBound(ws), 90);
  });

  test("scopeMaxLoad is the largest current GPU load of the scope's GPUs only", () => {
    const ws = new ScopeWorkspace();
    ws.reset(1, 3, 1);
    ws.gpuLoad.set([4, 9, 2]);
    assert.equal(scopeMaxLoad(ws), 9);
    ws.reset(1, 2, 1); // GPU 2 is outside the scope now
    ws.gpuLoad[1] = 3;
    assert.equal(scopeMaxLoad(ws), 4);
  });
});

describe("packScope without home nodes", () => {
  test("the documented example: GPU 0 holds 45 + 40, GPU 1 holds 45 + 30", () => {
    const ws = example();
    packScope(ws);
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 4)), [0, 2, 0, 1]);
    assert.deepEqual(Array.from(ws.gpuLoad.subarray(0, 2)), [85, 75]);
    assert.equal(scopeMaxLoad(ws), 85);
  });

  test("equals a plain largest-first greedy with the caps (fallback: fewest copies, then lightest)", () => {
    const rng = new Random(12);
    for (let run = 0; run < 300; run++) {
      const ws = randomScope(rng, false);
      const { numExperts: n, numGpus: G, slotsPerGpu: S } = ws;
      const w = Array.from(ws.weight.subarray(0, n));
      const c = Array.from(ws.count.subarray(0, n));
      const items: number[] = [];
      for (let e = 0; e < n; e++) for (let j = 0; j < c[e]; j++) items.push(e);
      const f32 = (e: number) => Math.fround(w[e] / c[e]);
      const order = items.map((_, i) => i).sort((a, b) => f32(items[b]) - f32(items[a]) || a - b);
      const load = new Array<number>(G).fill(0);
      const slots: number[][] = Array.from({ length: G }, () => []);
      for (const i of order) {
        const e = items[i];
        const cap = c[e] <= G ? 1 : Math.ceil(c[e] / G);
        const copies = (g: number) => slots[g].filter((x) => x === e).length;
        const room = [...Array(G).keys()].filter((g) => slots[g].length < S);
        const ok = room.filter((g) => copies(g) < cap);
        const by = (a: number, b: number) =>
          ok.length > 0
            ? load[a] - load[b] || a - b
            : copies(a) - copies(b) || load[a] - load[b] || a - b;
        const g = (ok.length > 0 ? ok : room).sort(by)[0];
        slots[g].push(e);
        load[g] += w[e] / c[e];
      }
      packScope(ws);
      assert.deepEqual(Array.from(ws.slotExpert.subarray(0, G * S)), slots.flat());
      assert.deepEqual(Array.from(ws.gpuLoad.subarray(0, G)), load);
    }
  });

  test("when every GPU with room holds the expert already, the lightest of them takes one more", () => {
    // 3 GPUs x 3 slots: the singles 10, 9, 8 fill GPU 2, so expert 5's third replica (cap 1) can
    // only go where a copy is: GPU 1 (501) rather than GPU 0 (1001).
    const ws = new ScopeWorkspace();
    ws.reset(7, 3, 3);
    ws.weight.set([1000, 500, 10, 9, 8, 3, 0.5]);
    ws.count.set([1, 1, 1, 1, 1, 3, 1]);
    packScope(ws);
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 9)), [0, 5, 6, 1, 5, 5, 2, 3, 4]);
  });
});

describe("packScope with home nodes", () => {
  test("every expert keeps a replica at home; slots, loads and homeCount agree with the assignment", () => {
    const rng = new Random(13);
    for (let run = 0; run < 300; run++) {
      const ws = randomScope(rng, true);
      const { numExperts: n, numGpus: G, slotsPerGpu: S, gpusPerNode: gpn } = ws;
      packScope(ws);
      const held = new Array<number>(n).fill(0);
      const atHome = new Array<number>(n).fill(0);
      for (let g = 0; g < G; g++) {
        for (let k = 0; k < S; k++) {
          const e = ws.slotExpert[g * S + k];
          held[e]++;
          if (Math.floor(g / gpn) === ws.home[e]) atHome[e]++;
        }
      }
      assert.deepEqual(held, Array.from(ws.count.subarray(0, n)));
      assert.ok(
        atHome.every((h) => h >= 1),
        `homes ${atHome}`,
      );
      assert.deepEqual(Array.from(ws.homeCount.subarray(0, n)), atHome);
      const loads = Array.from(ws.gpuLoad.subarray(0, G));
      recomputeScopeLoads(ws);
      assert.deepEqual(Array.from(ws.gpuLoad.subarray(0, G)), loads);
      assert.deepEqual(Array.from(ws.homeCount.subarray(0, n)), atHome);
      assert.ok(scopeMaxLoad(ws) >= scopeLowerBound(ws) * (1 - 1e-12));
    }
  });

  test("a home replica goes to the lightest GPU of its node, first of all", () => {
    // 2 nodes x 2 GPUs x 1 slot; expert 0 (home node 1) is split in two, expert 1 and 2 home on node 0.
    const ws = new ScopeWorkspace();
    ws.reset(3, 4, 1, 2);
    ws.weight.set([100, 30, 20]);
    ws.count.set([2, 1, 1]);
    ws.home.set([1, 0, 0]);
    packScope(ws);
    // Expert 0's second replica has only node 1's other GPU left: node 0's slots are kept for 1, 2.
    assert.deepEqual(Array.from(ws.slotExpert.subarray(0, 4)), [1, 2, 0, 0]);
    assert.deepEqual(Array.from(ws.homeCount.subarray(0, 3)), [2, 1, 1]);
  });
});

describe("recomputeScopeLoads", () => {
  test("the documented example: an assignment edited by hand gets its loads back", () => {
    const ws = example();
    packScope(ws);
    ws.slotExpert.set([0, 0, 1, 2]);
    recomputeScopeLoads(ws);
    assert.deepEqual(Array.from(ws.gpuLoad.subarray(0, 2)), [90, 70]);
  });
});

describe("ScopeWorkspace.reset", () => {
  test("sets the sizes, grows buffers and keeps them for smaller scopes", () => {
    const ws = new ScopeWorkspace();
    ws.reset(5, 4, 3, 2);
    assert.deepEqual([ws.numExperts, ws.numGpus, ws.slotsPerGpu, ws.gpusPerNode], [5, 4, 3, 2]);
    assert.deepEqual([ws.weight.length, ws.slotExpert.length, ws.gpuLoad.length], [5, 12, 4]);
    const { weight, slotExpert, gpuLoad } = ws;
    ws.reset(2, 2, 2);
    assert.equal(ws.gpusPerNode, 0);
    assert.equal(ws.weight, weight);
    assert.equal(ws.slotExpert, slotExpert);
    assert.equal(ws.gpuLoad, gpuLoad);
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  estimateMaxLoad,
  estimateSorted,
  reorder,
  sortByReplicaLoad,
} from "../../../../src/core/blocks/counts/estimate.js";
import { CountsWorkspace } from "../../../../src/core/blocks/counts/workspace.js";
import { Random } from "../../../../src/index.js";

/** Experts by replica load weight / count descending, exactly in float64, ties lower index. */
function plainSorted(w: ArrayLike<number>, count: ArrayLike<number>): number[] {
  const load = Array.from(w, (x, e) => x / count[e]);
  return load.map((_, e) => e).sort((a, b) => load[b] - load[a] || a - b);
}

/** Random weights with ties, float32-equal near-ties, zeros, and counts of 1 to 3. */
function randomCase(rng: Random, n: number): { w: Float64Array; count: Int32Array } {
  const w = new Float64Array(n);
  const count = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    const r = rng.int(5);
    w[e] =
      r === 0
        ? 0
        : r === 1
          ? 12
          : r === 2
            ? 12 * (1 + 2 ** -40)
            : Math.round(rng.lognormal(1) * 100);
    count[e] = 1 + rng.int(3);
  }
  return { w, count };
}

describe("sortByReplicaLoad", () => {
  test("orders by weight / count exactly in float64 (not float32), ties by lower index", () => {
    const rng = new Random(1);
    for (let run = 0; run < 300; run++) {
      const n = 1 + rng.int(200);
      const { w, count } = randomCase(rng, n);
      const ws = new CountsWorkspace();
      ws.ensure(n, 0, 0);
      const order = new Int32Array(n);
      sortByReplicaLoad(w, n, count, order, ws);
      assert.deepEqual(Array.from(order), plainSorted(w, count));
      for (let e = 0; e < n; e++) assert.equal(ws.replicaLoad[e], w[e] / count[e]);
    }
  });
});

describe("reorder", () => {
  test("after two experts' counts change, equals sorting again from scratch", () => {
    const rng = new Random(2);
    for (let run = 0; run < 500; run++) {
      const n = 2 + rng.int(40);
      const { w, count } = randomCase(rng, n);
      const ws = new CountsWorkspace();
      ws.ensure(n, 0, 0);
      const parent = new Int32Array(n);
      sortByReplicaLoad(w, n, count, parent, ws);
      const d = rng.int(n);
      let r = rng.int(n - 1);
      if (r >= d) r++;
      count[d] += 1;
      count[r] += 1 + rng.int(2);
      ws.replicaLoad[d] = w[d] / count[d];
      ws.replicaLoad[r] = w[r] / count[r];
      const out = new Int32Array(n);
      reorder(parent, n, d, r, out, ws);
      assert.deepEqual(Array.from(out), plainSorted(w, count), `d=${d} r=${r}`);
    }
  });
});

/** The replicas' loads, largest first, with their experts. */
function replicas(w: ArrayLike<number>, count: ArrayLike<number>): { load: number; e: number }[] {
  const out: { load: number; e: number }[] = [];
  for (const e of plainSorted(w, count))
    for (let c = 0; c < count[e]; c++) out.push({ load: w[e] / count[e], e });
  return out;
}

describe("estimateMaxLoad", () => {
  test("the documented example: 196.666... for these counts on 8 GPUs of 2 slots", () => {
    const w = new Float64Array([600, 560, 120, 120, 20, 10, 10, 10]);
    const v = estimateMaxLoad(w, 8, new Int32Array([4, 3, 1, 3, 1, 1, 1, 2]), 8, 2);
    assert.ok(Math.abs(v - 590 / 3) < 1e-9, `${v}`);
  });

  test("one slot per GPU: exactly the largest replica load; atMax counts the replicas at it", () => {
    const ws = new CountsWorkspace();
    const w = new Float64Array([30, 10, 60, 5]);
    const count = new Int32Array([1, 1, 2, 1]); // replicas 30, 10, 30, 30, 5 on 5 GPUs
    assert.equal(estimateMaxLoad(w, 4, count, 5, 1, ws), 30);
    assert.equal(ws.atMax, 3);
    assert.deepEqual(Array.from(ws.hot.subarray(0, ws.hotCount)), [0]);
  });

  test("two slots per GPU: pairs largest with smallest replica, as a plain pairing does", () => {
    const rng = new Random(3);
    let compared = 0;
    for (let run = 0; run < 400; run++) {
      const G = 1 + rng.int(12);
      const n = 1 + rng.int(2 * G);
      const count = new Int32Array(n).fill(1);
      for (let extra = 2 * G - n; extra > 0; extra--) count[rng.int(n)]++;
      const w = Float64Array.from({ length: n }, () => Math.round(rng.lognormal(1) * 50));
      const reps = replicas(w, count);
      // The plain pairing is what the estimate computes unless it pairs an expert with itself.
      let plain = 0;
      let clash = false;
      for (let i = 0; i < G; i++) {
        const a = reps[i];
        const b = reps[2 * G - 1 - i];
        if (a.e === b.e) clash = true;
        plain = Math.max(plain, a.load + b.load);
      }
      const v = estimateMaxLoad(w, n, count, G, 2);
      if (clash) {
        // Avoiding the clash can only cost: never below the free pairing's maximum.
        assert.ok(v >= plain * (1 - 1e-12), `${v} < ${plain}`);
        continue;
      }
      assert.equal(v, plain);
      compared++;
    }
    assert.ok(compared > 200, `${compared} clash-free cases`);
  });

  test("more slots: a plain largest-first greedy with the per-GPU caps gives the same maximum and hot GPU", () => {
    const rng = new Random(4);
    for (let run = 0; run < 300; run++) {
      const G = 1 + rng.int(6);
      const S = 3 + rng.int(3);
      const n = 1 + rng.int(G * S);
      const count = new Int32Array(n).fill(1);
      for (let extra = G * S - n; extra > 0; extra--) count[rng.int(n)]++;
      const w = Float64Array.from({ length: n }, () =>
        rng.int(4) === 0 ? 7 : Math.round(rng.lognormal(1) * 50),
      );
      // Plain: each replica, largest first, to the lightest GPU (lowest index on ties) with room
      // that holds fewer than the cap of its expert; if none, to the heaviest GPU with room.
      const load = new Array<number>(G).fill(0);
      const fill = new Array<number>(G).fill(0);
      const held: number[][] = Array.from({ length: G }, () => []);
      for (const e of plainSorted(w, count)) {
        const cap = count[e] <= G ? 1 : Math.ceil(count[e] / G);
        for (let c = 0; c < count[e]; c++) {
          const room = [...Array(G).keys()].filter((g) => fill[g] < S);
          room.sort((a, b) => load[a] - load[b] || a - b);
          const ok = room.filter((g) => held[g].filter((x) => x === e).length < cap);
          const g = ok.length > 0 ? ok[0] : room[room.length - 1];
          load[g] += w[e] / count[e];
          fill[g]++;
          held[g].push(e);
        }
      }
      const max = Math.max(...load);
      const hotGpu = load.indexOf(max);
      const ws = new CountsWorkspace();
      assert.equal(estimateMaxLoad(w, n, count, G, S, ws), max);
      assert.deepEqual(Array.from(ws.hot.subarray(0, ws.hotCount)), held[hotGpu]);
      assert.equal(ws.atMax, load.filter((x) => x >= max * (1 - 1e-9)).length);
    }
  });

  test("estimateSorted on an order from sortByReplicaLoad is estimateMaxLoad", () => {
    const rng = new Random(5);
    for (let run = 0; run < 100; run++) {
      const G = 1 + rng.int(8);
      const S = 1 + rng.int(4);
      const n = 1 + rng.int(G * S);
      const count = new Int32Array(n).fill(1);
      for (let extra = G * S - n; extra > 0; extra--) count[rng.int(n)]++;
      const w = Float64Array.from({ length: n }, () => rng.lognormal(1));
      const ws = new CountsWorkspace();
      ws.ensure(n, G * S, G);
      const order = new Int32Array(n);
      sortByReplicaLoad(w, n, count, order, ws);
      assert.equal(estimateSorted(n, count, order, G, S, ws), estimateMaxLoad(w, n, count, G, S));
    }
  });
});

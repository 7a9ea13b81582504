import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { lognormalLoads, Random } from "../../../src/core/blocks/random.js";
import { type CostModel, copyMs, makeCostModel } from "../../../src/core/cost/model.js";
import { scheduleTransfers, type TransferSchedule } from "../../../src/core/cost/schedule.js";
import { planTransfers, type TransferPlan } from "../../../src/core/evaluation/transfers.js";
import { placementFromPhy2log } from "../../../src/core/model/placement.js";
import { makeTopology, type Topology } from "../../../src/core/model/topology.js";
import { getPolicy } from "../../../src/core/policies/index.js";
import { rebalanceExperts } from "../../../src/core/rebalance.js";

const MODEL = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });

/** A transfer plan from (layer, source slot, destination slot) triples, kinds from the topology. */
function planOf(
  t: Topology,
  layers: number,
  copies: Array<[number, number, number]>,
): TransferPlan {
  const sorted = [...copies].sort((a, b) => a[0] - b[0]);
  const n = sorted.length;
  const layerOffsets = new Int32Array(layers + 1);
  const plan = {
    count: n,
    layerOffsets,
    layer: new Int32Array(n),
    expert: new Int32Array(n),
    source: new Int32Array(n),
    destination: new Int32Array(n),
    kind: new Uint8Array(n),
    local: 0,
    intraNode: 0,
    interNode: 0,
  };
  sorted.forEach(([l, s, d], i) => {
    plan.layer[i] = l;
    plan.source[i] = s;
    plan.destination[i] = d;
    const kind =
      Math.floor(s / t.slotsPerGpu) === Math.floor(d / t.slotsPerGpu)
        ? 0
        : Math.floor(s / t.slotsPerNode) === Math.floor(d / t.slotsPerNode)
          ? 1
          : 2;
    plan.kind[i] = kind;
    layerOffsets[l + 1]++;
  });
  for (let l = 0; l < layers; l++) layerOffsets[l + 1] += layerOffsets[l];
  return plan;
}

/** The largest number of copies between GPUs any GPU sends or receives among plan[start..end). */
function maxDegree(plan: TransferPlan, t: Topology, start: number, end: number): number {
  const out = new Map<number, number>();
  const into = new Map<number, number>();
  let best = 0;
  for (let i = start; i < end; i++) {
    if (plan.kind[i] === 0) continue;
    const s = Math.floor(plan.source[i] / t.slotsPerGpu);
    const d = Math.floor(plan.destination[i] / t.slotsPerGpu);
    out.set(s, (out.get(s) ?? 0) + 1);
    into.set(d, (into.get(d) ?? 0) + 1);
    best = Math.max(best, out.get(s) ?? 0, into.get(d) ?? 0);
  }
  return best;
}

/** Every non-local transfer in exactly one round, no GPU twice on a side of a round. */
function assertValid(plan: TransferPlan, t: Topology, s: TransferSchedule): void {
  const seen = new Int32Array(plan.count);
  assert.equal(s.roundStart.length, s.rounds + 1);
  assert.equal(s.roundStart[s.rounds], s.order.length);
  for (let r = 0; r < s.rounds; r++) {
    const senders = new Set<number>();
    const receivers = new Set<number>();
    assert.ok(s.roundStart[r + 1] > s.roundStart[r], `round ${r} is not empty`);
    for (let k = s.roundStart[r]; k < s.roundStart[r + 1]; k++) {
      const i = s.order[k];
      seen[i]++;
      assert.equal(s.roundOf[i], r);
      const from = Math.floor(plan.source[i] / t.slotsPerGpu);
      const to = Math.floor(plan.destination[i] / t.slotsPerGpu);
      assert.ok(!senders.has(from), `GPU ${from} sends twice in round ${r}`);
      assert.ok(!receivers.has(to), `GPU ${to} receives twice in round ${r}`);
      senders.add(from);
      receivers.add(to);
    }
  }
  for (let i = 0; i < plan.count; i++) {
    if (plan.kind[i] === 0) {
      assert.equal(seen[i], 0);
      assert.equal(s.roundOf[i], -1);
    } else assert.equal(seen[i], 1, `transfer ${i} scheduled once`);
  }
}

const randomCase = fc
  .record({
    nodes: fc.integer({ min: 1, max: 3 }),
    gpusPerNode: fc.integer({ min: 1, max: 4 }),
    slotsPerGpu: fc.integer({ min: 1, max: 3 }),
    layers: fc.integer({ min: 1, max: 4 }),
    seeds: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { maxLength: 120 }),
    chunk: fc.integer({ min: 1, max: 4 }),
  })
  .map(({ nodes, gpusPerNode, slotsPerGpu, layers, seeds, chunk }) => {
    const gpus = nodes * gpusPerNode;
    const P = gpus * slotsPerGpu;
    const t = makeTopology(P, P, 1, nodes, gpus);
    const copies = seeds.map(([l, s, d]) => [l % layers, s % P, d % P] as [number, number, number]);
    return { t, layers, plan: planOf(t, layers, copies), chunk };
  });

describe("scheduleTransfers", () => {
  test("random multigraphs: rounds = the largest per-GPU send or receive count, every copy once, no GPU twice per round", () => {
    fc.assert(
      fc.property(randomCase, ({ t, plan }) => {
        const s = scheduleTransfers(plan, t, MODEL);
        assert.equal(s.rounds, maxDegree(plan, t, 0, plan.count));
        assertValid(plan, t, s);
        let total = 0;
        for (let r = 0; r < s.rounds; r++) {
          let slowest = 0;
          for (let k = s.roundStart[r]; k < s.roundStart[r + 1]; k++) {
            slowest = Math.max(
              slowest,
              copyMs(MODEL, (["local", "intraNode", "interNode"] as const)[plan.kind[s.order[k]]]),
            );
          }
          assert.equal(s.roundMs[r], slowest);
          total += slowest;
        }
        assert.ok(Math.abs(s.totalMs - total) < 1e-9);
      }),
      { numRuns: 300 },
    );
  });

  test("dense multigraphs: many copies between the same pair of GPUs", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })), {
          minLength: 1,
          maxLength: 200,
        }),
        (pairs) => {
          const t = makeTopology(6, 6, 1, 3, 3); // 3 nodes of 1 GPU, 2 slots each
          const plan = planOf(
            t,
            1,
            pairs.map(([a, b]) => [0, 2 * a, 2 * b + 1]),
          );
          const s = scheduleTransfers(plan, t);
          assert.equal(s.rounds, maxDegree(plan, t, 0, plan.count));
          assertValid(plan, t, s);
          assert.equal(s.totalMs, 0);
        },
      ),
      { numRuns: 200 },
    );
  });

  test("layer chunks: each chunk optimal on its own, chunks in layer order, rounds = sum of their maxima", () => {
    fc.assert(
      fc.property(randomCase, ({ t, layers, plan, chunk }) => {
        const s = scheduleTransfers(plan, t, MODEL, { layerChunk: chunk });
        assertValid(plan, t, s);
        let expected = 0;
        for (let first = 0; first < layers; first += chunk) {
          const start = plan.layerOffsets[first];
          const end = plan.layerOffsets[Math.min(layers, first + chunk)];
          const delta = maxDegree(plan, t, start, end);
          for (let i = start; i < end; i++) {
            if (plan.kind[i] === 0) continue;
            assert.ok(s.roundOf[i] >= expected && s.roundOf[i] < expected + delta);
          }
          expected += delta;
        }
        assert.equal(s.rounds, expected);
      }),
      { numRuns: 200 },
    );
  });

  test("a rebalance's plan: local copies need no round; inter-node copies share rounds when they can", () => {
    // 2 nodes x 2 GPUs, 2 slots per GPU. GPU 0 sends two inter-node copies (to GPUs 2 and 3) and
    // GPU 1 one intra-node copy to GPU 0; GPU 2 sends one intra-node copy to GPU 3; one local copy.
    const t = makeTopology(8, 8, 1, 2, 4);
    const plan = planOf(t, 1, [
      [0, 0, 4], // GPU 0 -> GPU 2, inter
      [0, 1, 6], // GPU 0 -> GPU 3, inter
      [0, 2, 1], // GPU 1 -> GPU 0, intra
      [0, 5, 7], // GPU 2 -> GPU 3, intra
      [0, 3, 2], // GPU 1 -> GPU 1, local
    ]);
    const s = scheduleTransfers(plan, t, MODEL);
    assert.equal(s.rounds, 2); // GPU 0 sends 2, GPU 3 receives 2
    assertValid(plan, t, s);
    assert.equal(s.roundOf[4], -1);
    // Both rounds hold an inter-node copy (GPU 0 sends one in each): 2 x 1 ms.
    assert.deepEqual([...s.roundMs], [1, 1]);
    assert.equal(s.totalMs, 2);
  });

  test("inter-node copies are coloured into as few rounds as the busiest GPU's inter-node copies", () => {
    // GPU 0 sends 3 intra-node copies; GPU 1 and GPU 3 each one inter-node copy (to GPUs 2, 0).
    // Any 3-round schedule is optimal; a kind-blind one may spread the 2 inter copies over 2
    // rounds (1 + 1 + 0.25 ms); colouring them first puts them in one round (1 + 0.25 + 0.25).
    const t = makeTopology(8, 8, 1, 2, 4);
    const plan = planOf(t, 1, [
      [0, 0, 2], // GPU 0 -> 1 intra
      [0, 0, 3], // GPU 0 -> 1 intra
      [0, 1, 2], // GPU 0 -> 1 intra
      [0, 2, 4], // GPU 1 -> 2 inter
      [0, 6, 1], // GPU 3 -> 0 inter
    ]);
    const s = scheduleTransfers(plan, t, MODEL);
    assert.equal(s.rounds, 3);
    assertValid(plan, t, s);
    assert.equal(s.totalMs, 1.5);
  });

  test("real rebalances: inter-node copies stay in about as few rounds as the busiest GPU's inter-node copies", () => {
    // 8 layers of DeepSeek-V3's prefill shape, 5% drift, from eplb's rebalance and from a
    // DeepSeek re-plan, 5 seeds. Measured when written: 3 rounds over the lower bounds in all
    // (a colouring blind to link kinds spreads them over most rounds); a change that spreads the
    // inter-node copies further fails here.
    const t = makeTopology(256, 288, 8, 4, 32);
    let interRounds = 0;
    let lowerBound = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const before = lognormalLoads(8, 256, 1, seed);
      const rng = new Random(seed + 100);
      const after = { ...before, data: before.data.map((v) => v * rng.lognormal(0.05)) };
      const previous = getPolicy("balanced").plan(before, t, {});
      const nexts = [
        rebalanceExperts(after, 288, 8, 4, 32, { previous }).placement,
        getPolicy("deepseek").plan(after, t, {}),
      ];
      for (const next of nexts) {
        const plan = planTransfers(previous, next, t);
        const s = scheduleTransfers(plan, t, MODEL);
        assertValid(plan, t, s);
        const inter = { ...plan, kind: plan.kind.map((k) => (k === 2 ? 2 : 0)) };
        lowerBound += maxDegree(inter, t, 0, plan.count);
        const rounds = new Set<number>();
        for (let i = 0; i < plan.count; i++) if (plan.kind[i] === 2) rounds.add(s.roundOf[i]);
        interRounds += rounds.size;
      }
    }
    assert.ok(interRounds >= lowerBound);
    assert.ok(
      interRounds <= lowerBound + 3,
      `${interRounds} rounds hold inter-node copies, lower bound ${lowerBound}`,
    );
  });

  test("planTransfers output: one round per copy of the busiest GPU", () => {
    const t = makeTopology(4, 8, 1, 2, 4);
    const plan = planTransfers(
      placementFromPhy2log([[0, 1, 2, 3, 0, 1, 2, 3]], 4),
      placementFromPhy2log([[0, 2, 2, 3, 0, 3, 2, 1]], 4),
      t,
    );
    const s = scheduleTransfers(plan, t, MODEL);
    assert.equal(s.rounds, 1);
    assert.equal(s.totalMs, 0.25);
  });

  test("no transfers: no rounds; a bad chunk is refused", () => {
    const t = makeTopology(4, 4, 1, 1, 2);
    const plan = planOf(t, 2, []);
    const s = scheduleTransfers(plan, t, MODEL as CostModel, { layerChunk: 1 });
    assert.equal(s.rounds, 0);
    assert.equal(s.totalMs, 0);
    assert.throws(
      () => scheduleTransfers(plan, t, undefined, { layerChunk: 0 }),
      /layerChunk \(0\)/,
    );
  });
});

describe("scheduleTransfers on a pathological plan", () => {
  test("a round table beyond 2^26 entries is refused in one line, and layer chunks schedule it", () => {
    // 8192 GPUs of 1 slot, 4100 layers, GPU 0 sends one copy per layer: 4100 rounds of a
    // 2 * 8192 * 4100 = 67,174,400-entry table.
    const t = makeTopology(8192, 8192, 1, 1, 8192);
    const layers = 4100;
    const plan = planOf(
      t,
      layers,
      Array.from({ length: layers }, (_, l) => [l, 0, 1 + (l % 8191)] as [number, number, number]),
    );
    assert.throws(() => scheduleTransfers(plan, t), {
      name: "EplbInputError",
      message:
        'transfers ("4100 copies from or to one GPU among 8192") need a 67174400-entry round table (more than 67108864); schedule in layer chunks (layerChunk)',
    });
    const s = scheduleTransfers(plan, t, undefined, { layerChunk: 2048 });
    assert.equal(s.rounds, layers);
  });
});

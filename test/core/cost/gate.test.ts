import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_GATE_INTERVALS,
  gateHorizonSteps,
  gateRebalance,
} from "../../../src/core/cost/gate.js";
import { makeCostModel } from "../../../src/core/cost/model.js";
import { transferPlanMs } from "../../../src/core/cost/price.js";
import {
  EplbInputError,
  makeTopology,
  placementFromPhy2log,
  planTransfers,
  simulate,
  synthesizeTrace,
  toLoadMatrix,
} from "../../../src/index.js";
import { ordinaryModel } from "../../helpers/priced-flip.js";
import { assertRefused } from "../../helpers/refused.js";

describe("gateHorizonSteps", () => {
  test("counts the saving over three intervals by default, or over the intervals given", () => {
    assert.equal(DEFAULT_GATE_INTERVALS, 3);
    assert.equal(gateHorizonSteps(100), 300);
    assert.equal(gateHorizonSteps(100, 1), 100);
    assert.equal(gateHorizonSteps(10, 0.5), 5);
  });

  test("refuses a horizon that is not a finite number > 0, naming costGateIntervals", () => {
    for (const [bad, shown] of [
      [0, "0"],
      [-1, "-1"],
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      ["3", '"3"'],
    ] as const) {
      assertRefused(
        () => gateHorizonSteps(10, bad as number),
        EplbInputError,
        `costGateIntervals (${shown}) must be a finite number > 0`,
        "costGateIntervals",
      );
    }
  });
});

describe("gateRebalance on hand-computed layers", () => {
  const topo = makeTopology(2, 4, 1, 2, 2); // 2 nodes x 1 GPU, 2 slots each
  // 1 ms per (token, expert) pair; 1 MB over 8 Gb/s: 1 ms per copy.
  const model = makeCostModel({ expertBytes: 1e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
  const split = [0, 0, 1, 1];
  const spread = [0, 1, 0, 1];

  test("a plan equal to the previous one changes nothing and is not counted as skipped", () => {
    const previous = placementFromPhy2log([[0, 1, 0, 1]], 2);
    const next = placementFromPhy2log([[0, 1, 0, 1]], 2);
    const d = gateRebalance(previous, next, toLoadMatrix([[8, 2]]), topo, model, 10);
    assert.equal(d.placement, previous);
    assert.deepEqual(
      { skipped: d.skipped, skippedLayers: d.skippedLayers, stallMs: d.stallMs },
      { skipped: false, skippedLayers: 0, stallMs: 0 },
    );
  });

  test("the documented example: a swap that saves nothing over slow links is skipped", () => {
    const t = makeTopology(2, 2, 1, 1, 2);
    const slowLinks = makeCostModel({ expertBytes: 1e9, intraGbps: 1, interGbps: 1, tokenUs: 1 });
    const previous = placementFromPhy2log([[0, 1]], 2);
    const d = gateRebalance(
      previous,
      placementFromPhy2log([[1, 0]], 2),
      toLoadMatrix([[5, 1]]),
      t,
      slowLinks,
      10,
    );
    assert.equal(d.skipped, true);
    assert.equal(d.skippedLayers, 1);
    assert.equal(d.placement, previous);
    assert.equal(d.stallMs, 0);
  });

  test("keeps only the layer that does not pay, and prices the stall of the layers it adopts", () => {
    // Both layers go from GPU 0 = {0, 0} | GPU 1 = {1, 1} to {0, 1} | {0, 1}.
    const previous = placementFromPhy2log([split, split], 2);
    const next = placementFromPhy2log([spread, spread], 2);
    const before = {
      previous: Array.from(previous.phy2log),
      next: Array.from(next.phy2log),
    };
    // Layer 0: busiest GPU 8 -> 5 per step, 30 ms saved over 10 steps for about 1 ms of copies.
    // Layer 1: both GPUs carry 2 either way, so its copies buy nothing.
    const estimate = toLoadMatrix([
      [8, 2],
      [2, 2],
    ]);
    const d = gateRebalance(previous, next, estimate, topo, model, 10);
    assert.equal(d.skipped, false);
    assert.equal(d.skippedLayers, 1);
    assert.deepEqual(Array.from(d.placement.phy2log), [0, 1, 0, 1, 0, 0, 1, 1]);
    assert.deepEqual(Array.from(d.placement.logcnt), [2, 2, 2, 2]);
    const adopted = transferPlanMs(planTransfers(previous, d.placement, topo), topo, model);
    assert.ok(adopted > 0);
    assert.equal(d.stallMs, adopted);
    assert.ok(d.stallMs < transferPlanMs(planTransfers(previous, next, topo), topo, model));
    // Neither input is edited: the gate copies before it puts a layer back.
    assert.deepEqual(Array.from(previous.phy2log), before.previous);
    assert.deepEqual(Array.from(next.phy2log), before.next);
  });

  test("a longer horizon lets a change through that a shorter one holds back", () => {
    const previous = placementFromPhy2log([split], 2);
    const next = placementFromPhy2log([spread], 2);
    const estimate = toLoadMatrix([[8, 2]]);
    // 3 ms saved per step against copies priced at 100 ms (100 MB over 8 Gb/s).
    const dear = makeCostModel({ expertBytes: 100e6, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
    const stall = transferPlanMs(planTransfers(previous, next, topo), topo, dear);
    const justShort = Math.floor(stall / 3) - 1;
    assert.equal(gateRebalance(previous, next, estimate, topo, dear, justShort).skipped, true);
    const pays = gateRebalance(previous, next, estimate, topo, dear, justShort + 2);
    assert.equal(pays.skipped, false);
    assert.equal(pays.placement, next);
    assert.equal(pays.stallMs, stall);
  });
});

describe("the gate inside simulate", () => {
  const t = synthesizeTrace({ steps: 200, layers: 4, experts: 32, seed: 2, drift: 0.03 });
  const config = {
    numReplicas: 48,
    numGroups: 4,
    numNodes: 2,
    numGpus: 8,
    interval: 10,
    window: 10,
  };
  // 20 GB per expert over 1 Gb/s: one copy takes 160 s, against about a millisecond per step.
  const slow = makeCostModel({ expertBytes: 20e9, intraGbps: 1, interGbps: 1, tokenUs: 0.05 });
  const cheap = makeCostModel({ expertBytes: 1, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });

  test("tens of GB per expert over 1 Gb/s every 10 steps: rebalancing loses, the gate skips it all", () => {
    const ungated = simulate(t, { ...config, cost: slow, costGate: false });
    const none = ungated.baselines.none?.cost?.totalMs ?? 0;
    // Every rebalance stalls for minutes: far slower than not balancing at all.
    assert.ok((ungated.eplb.cost?.totalMs ?? 0) > 100 * none);
    assert.ok((ungated.baselines.deepseek?.cost?.totalMs ?? 0) > 100 * none);
    const gated = simulate(t, { ...config, cost: slow });
    const rebalances = gated.rebalanceSteps.length;
    assert.equal(gated.eplb.cost?.skippedRebalances, rebalances - 1);
    assert.ok((gated.eplb.cost?.skippedLayers ?? 0) > 0);
    // Truthful: nothing was moved, so nothing was paid: eplb is its first placement kept.
    assert.equal(gated.eplb.movedSlotsPerRebalance, 0);
    assert.equal(gated.eplb.cost?.transferMsPerRebalance, 0);
    const kept = simulate(t, { ...config, cost: slow, staticBaseline: true }).baselines.static;
    assert.equal(gated.eplb.cost?.totalMs, kept?.cost?.totalMs);
  });

  test("when transfers cost next to nothing the gate lets every rebalance through", () => {
    const gated = simulate(t, { ...config, cost: cheap });
    const ungated = simulate(t, { ...config, cost: cheap, costGate: false });
    assert.equal(gated.eplb.cost?.skippedRebalances, 0);
    assert.deepEqual(gated.eplb.movedSlots, ungated.eplb.movedSlots);
    // Balancing pays against no balancing when moves are cheap.
    assert.ok((gated.eplb.cost?.totalMs ?? 0) < (gated.baselines.none?.cost?.totalMs ?? 0));
  });

  test("the horizon: counting the saving over fewer intervals holds more layers back", () => {
    const skipped = (costGateIntervals: number) =>
      simulate(t, { ...config, cost: ordinaryModel, costGateIntervals }).eplb.cost?.skippedLayers ??
      -1;
    const one = skipped(1);
    const three = skipped(3);
    assert.ok(one > three && three > skipped(30), `${one} ${three}`);
    assert.throws(
      () => simulate(t, { ...config, cost: ordinaryModel, costGateIntervals: 0 }),
      /costGateIntervals \(0\) must be a finite number > 0/,
    );
  });

  test("a layer that saves less than its transfers keeps its previous placement", () => {
    const topo = makeTopology(2, 4, 1, 2, 2); // 2 nodes x 1 GPU, 2 slots each
    const previous = placementFromPhy2log(
      [
        [0, 1, 0, 1],
        [0, 0, 1, 1],
      ],
      2,
    );
    // Layer 0 stays; layer 1 balances its hot expert 0 over both GPUs.
    const next = placementFromPhy2log(
      [
        [0, 1, 0, 1],
        [0, 1, 0, 1],
      ],
      2,
    );
    const estimate = toLoadMatrix([
      [1, 1],
      [8, 2],
    ]);
    // Layer 1: busiest GPU 8 -> 5 per step: 3 tokens x 1 ms x 10 steps = 30 ms saved.
    const ms = (bytes: number) =>
      makeCostModel({ expertBytes: bytes, intraGbps: 8, interGbps: 8, tokenUs: 1000 });
    // Two inter-node copies in parallel (one each way): 1 ms at 1 MB, 100 ms at 100 MB.
    const pays = gateRebalance(previous, next, estimate, topo, ms(1e6), 10);
    assert.equal(pays.skipped, false);
    assert.equal(pays.skippedLayers, 0);
    assert.deepEqual(Array.from(pays.placement.phy2log), Array.from(next.phy2log));
    const loses = gateRebalance(previous, next, estimate, topo, ms(100e6), 10);
    assert.equal(loses.skipped, true);
    assert.equal(loses.skippedLayers, 1);
    assert.deepEqual(Array.from(loses.placement.phy2log), Array.from(previous.phy2log));
  });
});

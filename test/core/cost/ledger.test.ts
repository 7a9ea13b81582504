/**
 * src/core/cost/ledger.ts: what `eplb simulate` reports as a strategy's time is the MoE time of
 * its judged steps plus the stalls of its rebalances after the first deployment, which is free.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CostLedger } from "../../../src/core/cost/ledger.js";
import { makeCostModel } from "../../../src/core/cost/model.js";
import { rebalanceMs } from "../../../src/core/cost/price.js";
import { makeTopology, placementFromPhy2log } from "../../../src/index.js";

const model = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
// 2 nodes x 1 GPU x 2 slots, 3 experts.
const topology = makeTopology(3, 4, 1, 2, 2);
const a = placementFromPhy2log([[0, 1, 2, 0]], 3);
const b = placementFromPhy2log([[0, 2, 1, 0]], 3);

describe("CostLedger", () => {
  test("books steps in microseconds and reports milliseconds, keeping the series asked for", () => {
    const ledger = new CostLedger(model, topology, 3);
    ledger.step(1000, true);
    ledger.step(3000, false);
    ledger.step(5000, true);
    const r = ledger.result(false);
    assert.equal(r.moeMsPerStep, 3);
    // The series is indexed by judged step: a step not kept leaves its place at 0.
    assert.deepEqual(Array.from(r.stepMs), [1, 0, 5]);
    assert.equal(r.totalMs, 9);
  });

  test("the first deployment is free; later rebalances stall for their transfers", () => {
    const ledger = new CostLedger(model, topology, 0);
    ledger.rebalance(null, a);
    ledger.rebalance(a, b);
    ledger.rebalance(b, b);
    const moved = rebalanceMs(a, b, topology, model);
    assert.ok(moved > 0, "swapping experts 1 and 2 across nodes costs transfers");
    assert.equal(rebalanceMs(b, b, topology, model), 0);
    const r = ledger.result(false);
    assert.deepEqual(Array.from(r.transferMs), [0, moved, 0]);
    assert.equal(r.transferMsPerRebalance, moved / 2);
    assert.equal(r.totalMs, moved);
    assert.equal(r.moeMsPerStep, 0, "no judged step: no MoE time, not NaN");
  });

  test("a stall the caller already scheduled is booked as given; idle books nothing", () => {
    const ledger = new CostLedger(model, topology, 0);
    ledger.idle();
    ledger.rebalance(a, b, 12.5);
    ledger.idle();
    ledger.step(2000, false);
    const r = ledger.result(false);
    assert.deepEqual(Array.from(r.transferMs), [0, 12.5, 0]);
    assert.equal(r.transferMsPerRebalance, 6.25);
    assert.equal(r.totalMs, 2 + 12.5);
  });

  test("the gate's skipped counts are reported only for a gated strategy", () => {
    const ledger = new CostLedger(model, topology, 0);
    ledger.skippedRebalances = 2;
    ledger.skippedLayers = 5;
    const ungated = ledger.result(false);
    assert.ok(!("skippedRebalances" in ungated) && !("skippedLayers" in ungated));
    const gated = ledger.result(true);
    assert.equal(gated.skippedRebalances, 2);
    assert.equal(gated.skippedLayers, 5);
  });
});

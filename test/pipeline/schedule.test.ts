import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lognormalLoads, Random } from "../../src/core/blocks/random.js";
import { scheduleTransfers } from "../../src/core/cost/schedule.js";
import { transferList } from "../../src/core/evaluation/transfers.js";
import { EplbInputError } from "../../src/core/model/errors.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { planWithMetrics } from "../../src/pipeline/plan.js";
import {
  type PlanArgs,
  planScheduled,
  planWithinTime,
  rebalanceSchedule,
  transfersFile,
} from "../../src/pipeline/schedule.js";
import { msModel } from "../helpers/priced-flip.js";
import { assertRefused } from "../helpers/refused.js";

// Two windows of a 4-layer, 32-expert model on 2 nodes of 4 GPUs, the second drifted.
const first = lognormalLoads(4, 32, 1, 31);
const rng = new Random(32);
const second = { ...first, data: first.data.map((v) => v * rng.lognormal(0.5)) };
const previous = rebalanceExperts(first, 40, 4, 2, 8).placement;
const args: PlanArgs = [second, 40, 4, 2, 8, "balanced", { previous }];
const next = rebalanceExperts(second, 40, 4, 2, 8, { previous });

describe("rebalanceSchedule", () => {
  it("is null for a plan from scratch (no transfers to schedule)", () => {
    assert.equal(rebalanceSchedule(rebalanceExperts(second, 40, 4, 2, 8), msModel), null);
  });

  it("schedules as scheduleTransfers does, and states the rounds and, priced, their time", () => {
    assert.ok(next.transfers && next.transfers.count > 0, "the case moves experts");
    const plain = rebalanceSchedule(next, null);
    assert.ok(plain);
    const direct = scheduleTransfers(next.transfers, next.topology, undefined, {});
    assert.equal(plain.schedule.rounds, direct.rounds);
    assert.deepEqual(plain.metrics, { rounds: direct.rounds });
    const priced = rebalanceSchedule(next, msModel, 2);
    assert.ok(priced);
    assert.deepEqual(priced.metrics, {
      rounds: priced.schedule.rounds,
      layerChunk: 2,
      estimatedMs: priced.schedule.totalMs,
    });
    // 1 ms per copy: a round lasts 1 ms.
    assert.equal(priced.schedule.totalMs, priced.schedule.rounds);
  });
});

describe("transfersFile", () => {
  it("lists every transfer once: the local copies apart, the others in rounds", () => {
    const s = rebalanceSchedule(next, null);
    assert.ok(s && next.transfers);
    const file = transfersFile(next, s.schedule, null);
    assert.deepEqual(file.transfers, transferList(next.transfers, next.topology));
    assert.equal(file.rounds.length, s.metrics.rounds);
    const listed = [...file.local, ...file.rounds.flat()];
    assert.equal(listed.length, file.transfers.length);
    assert.equal(new Set(listed).size, listed.length, "no transfer twice");
    for (const t of file.local) assert.equal(t.kind, "local");
    for (const round of file.rounds) {
      const senders = round.map((t) => t.sourceGpu);
      const receivers = round.map((t) => t.destinationGpu);
      assert.equal(new Set(senders).size, round.length, "a GPU sends at most once per round");
      assert.equal(new Set(receivers).size, round.length, "a GPU receives at most once per round");
      for (const t of round) assert.notEqual(t.kind, "local");
    }
    assert.equal("roundMs" in file || "estimatedMs" in file || "layerChunk" in file, false);
  });

  it("priced: each round's time, their sum, and the chunking", () => {
    const s = rebalanceSchedule(next, msModel, 1);
    assert.ok(s);
    const file = transfersFile(next, s.schedule, msModel, 1);
    assert.equal(file.layerChunk, 1);
    assert.deepEqual(file.roundMs, [...s.schedule.roundMs]);
    assert.equal(file.roundMs?.length, file.rounds.length);
    assert.equal(
      file.estimatedMs,
      file.roundMs?.reduce((a, b) => a + b, 0),
    );
    // Chunked by layer: a round holds copies of one layer only.
    for (const round of file.rounds) assert.equal(new Set(round.map((t) => t.layer)).size, 1);
  });
});

describe("planWithinTime", () => {
  const withBudget = (b: number): PlanArgs => [
    second,
    40,
    4,
    2,
    8,
    "balanced",
    { previous, moveBudget: b, compareRelabelled: false },
  ];
  /** Per slot budget 0..40: its plan's slots and its schedule's time (1 ms per round). */
  const byBudget = Array.from({ length: 41 }, (_, b) => {
    const { result } = planWithMetrics(...withBudget(b));
    const ms = rebalanceSchedule(result, msModel)?.schedule.totalMs ?? 0;
    return { phy2log: result.placement.phy2log.join(), ms };
  });

  it("plans the largest slot budget whose schedule fits the time, as a plain search finds", () => {
    const full = byBudget[40].ms;
    assert.ok(full >= 3, `the full rebalance takes ${full} ms`);
    for (const budgetMs of [0, 1, 2, full - 1, full]) {
      const r = planWithinTime(args, budgetMs, msModel);
      const schedule = r.metrics.schedule;
      assert.ok((schedule.estimatedMs ?? 0) <= budgetMs, `${budgetMs} ms`);
      assert.equal(schedule.moveBudgetMs, budgetMs);
      assert.equal(schedule.rounds, r.schedule.rounds);
      assert.ok((schedule.plansTried ?? 0) >= 1 && (schedule.plansTried ?? 0) <= 8);
      // The full rebalance fits exactly: one probe, no search.
      if (budgetMs === full) assert.equal(schedule.plansTried, 2);
      // Some slot budget b gives this very plan, fits, and b + 1 does not (or b is every slot).
      const slots = r.result.placement.phy2log.join();
      const found = byBudget.some(
        ({ phy2log, ms }, b) =>
          phy2log === slots && ms <= budgetMs && (b === 40 || byBudget[b + 1].ms > budgetMs),
      );
      assert.ok(found, `${budgetMs} ms: not a largest fitting slot budget`);
    }
  });

  it("moves nothing within 0 ms, and everything a full rebalance moves within its time", () => {
    const none = planWithinTime(args, 0, msModel);
    assert.equal(none.result.transfers?.count, 0);
    assert.deepEqual([...none.result.placement.phy2log], [...previous.phy2log]);
    const all = planWithinTime(args, 1e9, msModel);
    assert.deepEqual(
      [...all.result.placement.phy2log],
      byBudget[40].phy2log.split(",").map(Number),
    );
    assert.equal(all.metrics.schedule.plansTried, 2, "one probe, then the plan");
  });

  it("refuses a plan without a previous placement", () => {
    assertRefused(
      () => planWithinTime([second, 40, 4, 2, 8, "balanced", {}], 5, msModel),
      EplbInputError,
      "previous (undefined) is needed for a move budget in time",
      "previous",
    );
  });
});

describe("planScheduled", () => {
  it("from scratch: the plan alone, no schedule", () => {
    const r = planScheduled([second, 40, 4, 2, 8, "balanced", {}], { model: msModel });
    assert.equal(r.schedule, null);
    assert.equal(r.metrics.schedule, undefined);
  });

  it("from a previous placement: the plan with its schedule in the metrics", () => {
    const r = planScheduled(args, { model: msModel, layerChunk: 2 });
    assert.ok(r.schedule);
    assert.deepEqual(r.metrics.schedule, {
      rounds: r.schedule.rounds,
      layerChunk: 2,
      estimatedMs: r.schedule.totalMs,
    });
    assert.deepEqual([...r.result.placement.phy2log], [...next.placement.phy2log]);
  });

  it("with a time budget: plans within it", () => {
    const r = planScheduled(args, { model: msModel, budgetMs: 2 });
    assert.equal(r.metrics.schedule?.moveBudgetMs, 2);
    assert.ok((r.metrics.schedule?.estimatedMs ?? 0) <= 2);
  });

  it("refuses a time budget without a cost model", () => {
    assertRefused(
      () => planScheduled(args, { model: null, budgetMs: 5 }),
      EplbInputError,
      "budgetMs (5) needs a cost model",
      "budgetMs",
    );
  });
});

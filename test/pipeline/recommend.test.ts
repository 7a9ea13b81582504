import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { recommendFromRows, recommendGrid } from "../../src/pipeline/recommend.js";
import type { PlainConfig, SweepRow } from "../../src/pipeline/sweep.js";

const base: PlainConfig = {
  numReplicas: 288,
  numGroups: 8,
  numNodes: 4,
  numGpus: 32,
  interval: 100,
  window: 100,
};

/** A priced sweep row: eplb's total and skips, no balancing's and deepseek's totals. */
function row(
  interval: number,
  replicas: number,
  totalMs: number,
  noneMs: number,
  rebalances: number,
  skipped: number,
  staticMs = skipped === rebalances - 1 ? totalMs : totalMs * 1.05,
): SweepRow {
  const summary = {
    meanRealizedBalancedness: 0.9,
    worstRealizedBalancedness: 0.8,
    movedSlotsPerRebalance: 10,
    movedSlotsFraction: 0.01,
    offNodeShare: 0,
  };
  const cost = (ms: number) => ({ moeMsPerStep: 1, transferMsPerRebalance: 1, totalMs: ms });
  return {
    ...summary,
    cost: { ...cost(totalMs), skippedRebalances: skipped, skippedLayers: skipped * 3 },
    interval,
    window: interval,
    replicas,
    policy: "balanced",
    estimator: "ema",
    fromPrevious: true,
    moveBudget: null,
    minGain: null,
    tolerance: null,
    slotGain: null,
    rebalances,
    judgedSteps: 1000 - interval,
    movedSlotsPerStep: 0.1,
    paretoOptimal: false,
    baselines: {
      none: { ...summary, cost: cost(noneMs) },
      deepseek: { ...summary, cost: cost(totalMs * 1.1) },
      static: { ...summary, cost: cost(staticMs) },
    },
  };
}

describe("--recommend: the grid", () => {
  test("every slot count at every interval, the window following the interval unless given", () => {
    const grid = recommendGrid(base, [50, 100], [288, 320]);
    assert.ok(grid.every((c) => c.staticBaseline === true));
    assert.deepEqual(
      grid.map((c) => [c.numReplicas, c.interval, c.window]),
      [
        [288, 50, 50],
        [288, 100, 100],
        [320, 50, 50],
        [320, 100, 100],
      ],
    );
    assert.deepEqual(
      recommendGrid(base, [50, 200], undefined, true).map((c) => [c.interval, c.window]),
      [
        [50, 100],
        [200, 100],
      ],
    );
  });
});

describe("--recommend: the answer read off the rows", () => {
  test("the best setup by time relative to no balancing, and the break-even interval", () => {
    const rec = recommendFromRows([
      // Every 10 steps the gate skipped every rebalance: rebalancing did not pay there.
      row(10, 288, 500, 990, 99, 98),
      row(50, 288, 520, 950, 19, 2),
      // Fewer judged steps, so a smaller total; what ranks is the time against no balancing.
      row(100, 288, 430, 900, 9, 0),
      row(100, 320, 400, 900, 9, 0),
    ]);
    assert.equal(rec.pays, true);
    assert.deepEqual([rec.best.interval, rec.best.replicas], [100, 320]);
    assert.equal(rec.best.speedupVsNone, 900 / 400);
    assert.deepEqual(rec.breakEven, [
      { replicas: 288, interval: 50 },
      { replicas: 320, interval: 100 },
    ]);
    // Every rebalance skipped: eplb is its first placement kept, no faster.
    assert.equal(rec.rows[0].pays, false);
    assert.equal(rec.rows[0].rebalancesDone, 0);
    assert.equal(rec.rows[0].speedupVsStatic, 1);
  });

  test("the best setup is one where rebalancing pays, when there is one", () => {
    // Interval 1000: no rebalance after the first, the best ratio to no balancing, but nothing
    // to recommend rebalancing with.
    const rec = recommendFromRows([
      row(100, 288, 430, 900, 9, 0),
      row(1000, 288, 300, 700, 1, 0, 300),
    ]);
    assert.deepEqual([rec.best.interval, rec.best.pays], [100, true]);
  });

  test("slower than keeping the first placement, or every rebalance skipped: no pay", () => {
    const rec = recommendFromRows([
      row(10, 288, 5000, 990, 99, 0, 600),
      row(50, 288, 500, 950, 19, 18),
    ]);
    assert.equal(rec.pays, false);
    assert.deepEqual(rec.breakEven, [{ replicas: 288, interval: null }]);
  });

  test("rows without prices are refused", () => {
    const unpriced = { ...row(10, 288, 1, 1, 2, 0), cost: undefined };
    assert.throws(() => recommendFromRows([unpriced]), /needs priced rows/);
    const noStatic = row(10, 288, 1, 1, 2, 0);
    noStatic.baselines = { ...noStatic.baselines, static: undefined };
    assert.throws(() => recommendFromRows([noStatic]), /static baselines/);
  });
});

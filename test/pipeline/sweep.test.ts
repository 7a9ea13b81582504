import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { describe, test } from "node:test";
import { simulate } from "../../src/core/traces/simulate.js";
import { synthesizeTrace } from "../../src/index.js";
import {
  defaultSweepWorkers,
  estimateSweep,
  markParetoFront,
  type PlainConfig,
  runSweep,
  SWEEP_NAMES,
  type SweepRow,
  sharedView,
  sweepGrid,
  sweepRow,
  sweepValue,
} from "../../src/pipeline/sweep.js";
import { smallSimulation } from "../helpers/small-cases.js";

const trace = synthesizeTrace({ steps: 120, layers: 3, experts: 8, seed: 5, drift: 0.02 });
const base: PlainConfig = smallSimulation;

describe("sweepGrid", () => {
  test("every combination, the first swept name varying slowest", () => {
    const grid = sweepGrid(base, { interval: ["10", "30"], estimator: ["mean", "ema", "max"] });
    assert.deepEqual(
      grid.map((c) => `${c.interval}/${c.estimator}`),
      ["10/mean", "10/ema", "10/max", "30/mean", "30/ema", "30/max"],
    );
    // The base is copied, never changed.
    assert.equal(base.interval, 20);
    assert.equal(grid[0].numReplicas, 12);
  });

  test("previous and the migration options set the configuration's fields", () => {
    const grid = sweepGrid(
      { ...base, rebalanceOptions: { tolerance: 0.1 } },
      { previous: ["yes", "no"], "move-budget": ["0", "0.5"], replicas: ["16"] },
    );
    assert.deepEqual(
      grid.map((c) => [c.fromPrevious, c.rebalanceOptions, c.numReplicas]),
      [
        [true, { tolerance: 0.1, moveBudget: 0 }, 16],
        [true, { tolerance: 0.1, moveBudget: 0.5 }, 16],
        [false, { tolerance: 0.1, moveBudget: 0 }, 16],
        [false, { tolerance: 0.1, moveBudget: 0.5 }, 16],
      ],
    );
  });

  test("no sweep: the base alone", () => {
    assert.deepEqual(sweepGrid(base, {}), [base]);
  });
});

describe("sweepRow and sweepValue", () => {
  const result = simulate(trace, { ...base, rebalanceOptions: { minGain: 0.02 } });
  const row = sweepRow(result);

  test("a row carries the configuration and the eplb strategy's figures", () => {
    assert.equal(row.interval, 20);
    assert.equal(row.replicas, 12);
    assert.equal(row.policy, "deepseek");
    assert.equal(row.minGain, 0.02);
    assert.equal(row.moveBudget, null);
    assert.equal(row.rebalances, result.rebalanceSteps.length);
    assert.equal(row.meanRealizedBalancedness, result.eplb.meanRealizedBalancedness);
    assert.equal(row.movedSlotsPerStep, result.eplb.movedSlotsPerRebalance / 20);
    assert.equal(
      row.baselines.deepseek?.meanRealizedBalancedness,
      result.baselines.deepseek?.meanRealizedBalancedness,
    );
    // The front is the sweep's to mark, not one row's.
    assert.equal(row.paretoOptimal, false);
  });

  test("labels as the sweep shows them", () => {
    assert.equal(sweepValue(row, "interval"), "20");
    assert.equal(sweepValue(row, "previous"), row.fromPrevious ? "yes" : "no");
    assert.equal(sweepValue(row, "min-gain"), "0.02");
    assert.equal(sweepValue(row, "move-budget"), "default");
    for (const name of SWEEP_NAMES) assert.equal(typeof sweepValue(row, name), "string");
  });
});

describe("markParetoFront", () => {
  test("dominated rows are off the front, ties stay on it", () => {
    const row = (b: number, m: number) =>
      ({ meanRealizedBalancedness: b, movedSlotsPerStep: m, paretoOptimal: true }) as SweepRow;
    const rows = [row(0.9, 30), row(0.88, 20), row(0.88, 25), row(0.85, 20), row(0.9, 30)];
    assert.deepEqual(
      markParetoFront(rows).map((r) => r.paretoOptimal),
      [true, true, false, false, true],
    );
  });
});

describe("runSweep", () => {
  const grid = sweepGrid(base, { interval: ["10", "20", "40"], previous: ["yes", "no"] });

  test("in this thread: one row per configuration, in grid order, as simulate computes it", async () => {
    let last = 0;
    const rows = await runSweep(trace, grid, 1, (done, total) => {
      assert.equal(total, grid.length * trace.steps);
      assert.ok(done >= last);
      last = done;
    });
    assert.equal(last, grid.length * trace.steps);
    assert.equal(rows.length, grid.length);
    for (let i = 0; i < grid.length; i++) {
      const expected = sweepRow(simulate(trace, { ...grid[i], series: false }));
      assert.deepEqual({ ...rows[i], paretoOptimal: false }, expected);
    }
    assert.ok(rows.some((r) => r.paretoOptimal));
    assert.deepEqual(
      rows.map((r) => r.paretoOptimal),
      markParetoFront(rows.map((r) => ({ ...r }))).map((r) => r.paretoOptimal),
    );
  });

  test("on worker threads: the same rows, in grid order, and the progress reaches the total", async () => {
    const alone = await runSweep(trace, grid, 1, () => {});
    let last = 0;
    const pooled = await runSweep(trace, grid, 2, (done) => {
      last = Math.max(last, done);
    });
    assert.deepEqual(pooled, alone);
    assert.ok(last > 0 && last <= grid.length * trace.steps);
  });

  test("a float trace travels to the workers unchanged", async () => {
    const floats = { ...trace, data: Float64Array.from(trace.data, (v) => v + 0.25) };
    const small = grid.slice(0, 2);
    assert.deepEqual(
      await runSweep(floats, small, 2, () => {}),
      await runSweep(floats, small, 1, () => {}),
    );
  });

  test("a configuration that fails ends the sweep with its message, in a worker or not", async () => {
    const bad = [base, { ...base, numReplicas: 13 }];
    await assert.rejects(
      runSweep(trace, bad, 1, () => {}),
      /numReplicas|replicas/,
    );
    await assert.rejects(
      runSweep(trace, bad, 2, () => {}),
      /simulation worker failed: .*replicas/i,
    );
  });
});

describe("sharedView", () => {
  test("the typed view of a shared buffer, by element type", () => {
    const buffer = new SharedArrayBuffer(16);
    assert.ok(sharedView({ buffer, dtype: "int32" }) instanceof Int32Array);
    assert.equal(sharedView({ buffer, dtype: "float32" }).length, 4);
    assert.equal(sharedView({ buffer, dtype: "float64" }).length, 2);
  });
});

describe("defaultSweepWorkers", () => {
  test("the cores for several configurations of a large trace, else this thread", () => {
    const large = { steps: 2000, layers: 58, experts: 256 };
    assert.equal(defaultSweepWorkers(12, large), availableParallelism());
    assert.equal(defaultSweepWorkers(1, large), 1);
    assert.equal(defaultSweepWorkers(12, { steps: 100, layers: 4, experts: 16 }), 1);
    // The threshold: 2 million cells per replay.
    assert.equal(
      defaultSweepWorkers(2, { steps: 1000, layers: 8, experts: 250 }),
      availableParallelism(),
    );
    assert.equal(defaultSweepWorkers(2, { steps: 999, layers: 8, experts: 250 }), 1);
  });
});

describe("estimateSweep", () => {
  const shape = { steps: 2000, layers: 58, experts: 256 };

  test("work over threads; the threads at most one per configuration", () => {
    const two = estimateSweep(12, shape, 2, false);
    assert.equal(two.threads, 2);
    assert.ok(Math.abs(two.seconds - (12 * 2000 * 58 * 256 * 4e-7) / 2) < 1e-9);
    assert.equal(estimateSweep(12, shape, 1, false).seconds, 2 * two.seconds);
    assert.equal(estimateSweep(3, shape, 8, false).threads, 3);
    assert.equal(estimateSweep(3, shape, 0, false).threads, 1);
  });

  test("without baselines, half the work", () => {
    assert.equal(
      estimateSweep(4, shape, 1, true).seconds * 2,
      estimateSweep(4, shape, 1, false).seconds,
    );
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { resolveEstimatorSpec, slotSharesOf, stepBalancedness } from "../../../src/blocks.js";
import {
  DEFAULT_ESTIMATOR,
  EplbInputError,
  estimateLoads,
  getPolicy,
  gpuLoads,
  type LoadTrace,
  placementFromPhy2log,
  placementViolation,
  rebalanceExperts,
  registerPolicy,
  type SimulationConfig,
  simulate,
  summarizeBalance,
  synthesizeTrace,
  traceSource,
} from "../../../src/index.js";

function trace(rows: number[][][]): LoadTrace {
  const steps = rows.length;
  const layers = rows[0].length;
  const experts = rows[0][0].length;
  return { steps, layers, experts, data: Float64Array.from(rows.flat(2)) };
}

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** Two experts on two GPUs with two slots each: popularity flips after two steps. */
const flip = trace([[[3, 1]], [[3, 1]], [[1, 3]], [[1, 3]]]);
const flipConfig: SimulationConfig = {
  numReplicas: 4,
  numGroups: 1,
  numNodes: 1,
  numGpus: 2,
  interval: 2,
  window: 2,
  estimator: "mean",
  policy: "deepseek",
};

describe("simulate: hand-computed tiny traces", () => {
  test("a plan made for [3, 1] and judged on [1, 3] gives 0.6; the oracle 1; no balancing 2/3", () => {
    // Estimate [3, 1]: counts [3, 1], one GPU holds expert 1 and a third of expert 0.
    // Judged on [1, 3]: GPU loads 3 + 1/3 and 2/3, mean 2, max 10/3: balancedness 0.6.
    const r = simulate(flip, flipConfig);
    assert.equal(r.firstJudgedStep, 2);
    assert.equal(r.judgedSteps, 2);
    assert.deepEqual(r.rebalanceSteps, [2]);
    assert.deepEqual(Array.from(r.eplb.balancedness), [0.6, 0.6]);
    close(r.eplb.meanRealizedBalancedness, 0.6);
    close(r.eplb.worstRealizedBalancedness, 0.6);
    // The oracle plans on [2, 6] (the two judged steps): counts [1, 3], GPU loads [2, 2].
    assert.deepEqual(Array.from(r.baselines.oracle?.balancedness ?? []), [1, 1]);
    // No balancing: GPU 0 holds expert 0 (1), GPU 1 expert 1 (3): mean 2, max 3.
    close(r.baselines.none?.meanRealizedBalancedness ?? 0, 2 / 3);
    // deepseek re-planning from the same (window mean) estimate makes the same plan as the
    // deepseek policy.
    assert.deepEqual(
      Array.from(r.baselines.deepseek?.balancedness ?? []),
      Array.from(r.eplb.balancedness),
    );
  });

  test("the deepseek baseline plans on the window mean, as engines do, whatever the configuration's estimator", () => {
    const t = synthesizeTrace({ steps: 60, layers: 3, experts: 16, seed: 7, drift: 0.05 });
    const cfg: SimulationConfig = {
      numReplicas: 24,
      numGroups: 1,
      numNodes: 1,
      numGpus: 4,
      interval: 10,
      window: 20,
    };
    const r = simulate(t, cfg);
    assert.equal(r.estimator.kind, DEFAULT_ESTIMATOR);
    assert.equal(DEFAULT_ESTIMATOR, "ema");
    assert.equal(r.estimator.halfLife, 5);
    assert.deepEqual(r.baselineEstimator, resolveEstimatorSpec({ kind: "mean", window: 20 }));
    const fresh = { ...cfg, policy: "deepseek", fromPrevious: false, baselines: false };
    const onMean = simulate(t, { ...fresh, estimator: "mean" });
    const onEma = simulate(t, fresh);
    assert.deepEqual(
      Array.from(r.baselines.deepseek?.balancedness ?? []),
      Array.from(onMean.eplb.balancedness),
    );
    // The trace drifts enough for the two estimates to give different plans.
    assert.notDeepEqual(Array.from(onEma.eplb.balancedness), Array.from(onMean.eplb.balancedness));
  });

  test("balancedness per step averages layers; an idle layer counts as balanced", () => {
    // Layer 0 as above; layer 1 carries no load at all: (0.6 + 1) / 2 per judged step.
    const t = trace([
      [
        [3, 1],
        [0, 0],
      ],
      [
        [3, 1],
        [0, 0],
      ],
      [
        [1, 3],
        [0, 0],
      ],
      [
        [1, 3],
        [0, 0],
      ],
    ]);
    const r = simulate(t, flipConfig);
    assert.deepEqual(Array.from(r.eplb.balancedness), [0.8, 0.8]);
  });

  test("the estimate uses only the past `window` steps; a longer window averages older ones", () => {
    // Steps: [3,1] x4 then [1,3] x2; interval 2. With window 2, the rebalance at step 4 sees
    // [3,1] only; at step 4 the judged steps are [1,3]: 0.6. With window 4 the same.
    // With interval 2 and window 2, the rebalance at step 2 also sees [3,1]: steps 2, 3 are [3,1]
    // under a [3,1] plan: perfectly balanced.
    const t = trace([[[3, 1]], [[3, 1]], [[3, 1]], [[3, 1]], [[1, 3]], [[1, 3]]]);
    const r = simulate(t, flipConfig);
    assert.deepEqual(Array.from(r.eplb.balancedness), [1, 1, 0.6, 0.6]);
    assert.deepEqual(r.rebalanceSteps, [2, 4]);
  });

  test("moves count slots whose expert changed, from the second rebalance on", () => {
    const constant = trace(Array.from({ length: 8 }, () => [[5, 1, 2, 7]]));
    // From scratch, so the count does not depend on how rebalancing from a placement works.
    const cfg: SimulationConfig = {
      ...flipConfig,
      numReplicas: 6,
      interval: 2,
      window: 2,
      fromPrevious: false,
    };
    const r = simulate(constant, cfg);
    assert.deepEqual(Array.from(r.eplb.movedSlots), [0, 0, 0]);
    assert.equal(r.eplb.movedSlotsPerRebalance, 0);
    // Flipping popularity changes the plan: some slots move, at most all of them.
    const flipping = trace([
      [[5, 1, 2, 7]],
      [[5, 1, 2, 7]],
      [[7, 2, 1, 5]],
      [[7, 2, 1, 5]],
      [[5, 1, 2, 7]],
      [[5, 1, 2, 7]],
    ]);
    const f = simulate(flipping, cfg);
    assert.equal(f.eplb.movedSlots.length, 2);
    assert.equal(f.eplb.movedSlots[0], 0);
    assert.ok(f.eplb.movedSlots[1] > 0 && f.eplb.movedSlots[1] <= 6);
    assert.equal(f.eplb.movedSlotsPerRebalance, f.eplb.movedSlots[1]);
    assert.equal(f.eplb.movedSlotsFraction, f.eplb.movedSlots[1] / 6);
    assert.deepEqual(Array.from(f.baselines.none?.movedSlots ?? []), [0, 0]);
  });

  test("the previous placement reaches rebalanceExperts: a zero move budget freezes the first plan", () => {
    const flipping = trace([
      [[5, 1, 2, 7]],
      [[5, 1, 2, 7]],
      [[7, 2, 1, 5]],
      [[7, 2, 1, 5]],
      [[1, 7, 5, 2]],
      [[1, 7, 5, 2]],
    ]);
    const cfg: SimulationConfig = {
      ...flipConfig,
      numReplicas: 6,
      rebalanceOptions: { moveBudget: 0 },
    };
    const frozen = simulate(flipping, cfg);
    assert.deepEqual(Array.from(frozen.eplb.movedSlots), [0, 0]);
    assert.deepEqual(frozen.rebalanceOptions, { moveBudget: 0 });
    // The first plan (from steps 0-1) judged on steps 4-5: what a frozen placement realises.
    const first = rebalanceExperts([[5, 1, 2, 7]], 6, 1, 1, 2, { policy: "deepseek" }).placement;
    const step4 = { layers: 1, experts: 4, data: new Float64Array([1, 7, 5, 2]) };
    close(
      frozen.eplb.balancedness[2],
      summarizeBalance(gpuLoads(step4, first, { numGpus: 2 }), 1, 2).balancedness,
    );
    assert.deepEqual(frozen.finalPlacement.phy2log, first.phy2log);
  });

  test("the configuration's rebalance options reach its plans and the oracle's", () => {
    const seen: Array<{ previous: boolean; marker: unknown; loads: number[] }> = [];
    registerPolicy({
      name: "spy",
      description: "records its options, then plans as deepseek",
      options: ["marker"],
      plan: (loads, topology, options: { marker?: number; previous?: unknown }) => {
        seen.push({
          previous: options.previous !== undefined,
          marker: options.marker,
          loads: Array.from(loads.data),
        });
        return getPolicy("deepseek").plan(loads, topology, {});
      },
    });
    simulate(flip, { ...flipConfig, policy: "spy", rebalanceOptions: { marker: 7 } });
    // One rebalance: the configuration's plan (from the estimate [3, 1]), then the oracle's
    // (from the judged steps' sum [2, 6]); both see the options, neither a previous placement.
    assert.deepEqual(seen, [
      { previous: false, marker: 7, loads: [3, 1] },
      { previous: false, marker: 7, loads: [2, 6] },
    ]);
  });

  test("a trace whose length is not a multiple of the interval judges its last partial chunk", () => {
    const t = trace([[[3, 1]], [[3, 1]], [[1, 3]], [[1, 3]], [[1, 3]]]);
    const r = simulate(t, flipConfig);
    assert.equal(r.judgedSteps, 3);
    assert.deepEqual(r.rebalanceSteps, [2, 4]);
    // At step 4 the window is steps 2, 3 ([1, 3]): the plan fits step 4 exactly.
    assert.deepEqual(Array.from(r.eplb.balancedness), [0.6, 0.6, 1]);
  });
});

describe("simulate: agrees with planning and evaluating each chunk directly", () => {
  test("random traces and shapes: per-step balancedness = metrics of the plan from the estimate", () => {
    fc.assert(
      fc.property(
        fc.record({
          steps: fc.integer({ min: 2, max: 14 }),
          layers: fc.integer({ min: 1, max: 2 }),
          gpus: fc.integer({ min: 1, max: 3 }),
          slotsPerGpu: fc.integer({ min: 1, max: 3 }),
          expertsShare: fc.double({ min: 0.1, max: 1, noNaN: true }),
          interval: fc.integer({ min: 1, max: 5 }),
          window: fc.integer({ min: 1, max: 6 }),
          kind: fc.constantFrom("mean", "ema", "max", "meanstd" as const),
          seed: fc.integer(),
        }),
        (c) => {
          const interval = Math.min(c.interval, c.steps - 1);
          const P = c.gpus * c.slotsPerGpu;
          const E = Math.max(1, Math.floor(c.expertsShare * P));
          const n = c.layers * E;
          let s = c.seed >>> 0;
          const data = new Float64Array(c.steps * n);
          for (let i = 0; i < data.length; i++) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            data[i] = s % 7 === 0 ? 0 : s % 40;
          }
          const t: LoadTrace = { steps: c.steps, layers: c.layers, experts: E, data };
          const r = simulate(t, {
            numReplicas: P,
            numGroups: 1,
            numNodes: 1,
            numGpus: c.gpus,
            interval,
            window: c.window,
            estimator: c.kind,
            policy: "deepseek",
            fromPrevious: false,
          });
          let judged = 0;
          for (let start = interval; start < c.steps; start += interval) {
            const est = estimateLoads(t, start, { kind: c.kind, window: c.window });
            const plan = rebalanceExperts(
              { layers: c.layers, experts: E, data: est },
              P,
              1,
              1,
              c.gpus,
              { policy: "deepseek" },
            ).placement;
            for (let step = start; step < Math.min(c.steps, start + interval); step++) {
              const loads = {
                layers: c.layers,
                experts: E,
                data: data.slice(step * n, (step + 1) * n),
              };
              const expected = summarizeBalance(
                gpuLoads(loads, plan, { numGpus: c.gpus }),
                c.layers,
                c.gpus,
              ).balancedness;
              close(r.eplb.balancedness[judged], expected, 1e-9);
              judged++;
            }
          }
          assert.equal(judged, r.judgedSteps);
        },
      ),
      { numRuns: 150 },
    );
  });

  test("rebalancing from the previous placement (the default) always leaves a valid placement", () => {
    fc.assert(
      fc.property(
        fc.record({
          steps: fc.integer({ min: 3, max: 16 }),
          gpus: fc.integer({ min: 1, max: 3 }),
          slotsPerGpu: fc.integer({ min: 1, max: 3 }),
          expertsShare: fc.double({ min: 0.1, max: 1, noNaN: true }),
          budget: fc.constantFrom(0, 1, 0.5, undefined),
          policy: fc.constantFrom("deepseek", "balanced"),
          seed: fc.integer(),
        }),
        (c) => {
          const P = c.gpus * c.slotsPerGpu;
          const E = Math.max(1, Math.floor(c.expertsShare * P));
          let s = c.seed >>> 0;
          const data = new Float64Array(c.steps * 2 * E);
          for (let i = 0; i < data.length; i++) {
            s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
            data[i] = s % 5 === 0 ? 0 : s % 30;
          }
          const r = simulate(
            { steps: c.steps, layers: 2, experts: E, data },
            {
              numReplicas: P,
              numGroups: 1,
              numNodes: 1,
              numGpus: c.gpus,
              interval: 1,
              window: 2,
              policy: c.policy,
              rebalanceOptions: c.budget === undefined ? {} : { moveBudget: c.budget },
            },
          );
          assert.equal(placementViolation(r.finalPlacement), null);
          for (const m of r.eplb.movedSlots) assert.ok(m >= 0 && m <= 2 * P);
          if (c.budget === 0)
            assert.deepEqual(
              Array.from(r.eplb.movedSlots).slice(1),
              new Array(r.eplb.movedSlots.length - 1).fill(0),
            );
          for (const b of r.eplb.balancedness) assert.ok(b > 0 && b <= 1 + 1e-12);
        },
      ),
      { numRuns: 100 },
    );
  });

  test("a streamed TraceSource gives the same result as the materialised trace", () => {
    const t = trace([[[3, 1]], [[2, 2]], [[1, 3]], [[1, 3]], [[0, 4]]]);
    const a = simulate(t, flipConfig);
    const b = simulate(traceSource(t), flipConfig);
    assert.deepEqual(Array.from(a.eplb.balancedness), Array.from(b.eplb.balancedness));
  });

  test("stepBalancedness matches summarizeBalance(gpuLoads(...))", () => {
    const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
    assert.equal(
      stepBalancedness(new Float64Array([8, 2, 4]), 0, p.phy2log, slotSharesOf(p), 1, 3, 4, 2),
      0.875,
    );
  });
});

describe("simulate: options and bad input", () => {
  test("baselines: false runs only the configuration; series: false keeps no per-step series", () => {
    const r = simulate(flip, { ...flipConfig, baselines: false, series: false });
    assert.deepEqual(r.baselines, {});
    assert.equal(r.eplb.balancedness.length, 0);
    close(r.eplb.meanRealizedBalancedness, 0.6);
  });

  test("progress is reported after every chunk, ending at the trace length", () => {
    const seen: Array<[number, number]> = [];
    simulate(flip, { ...flipConfig, onProgress: (d, total) => seen.push([d, total]) });
    assert.deepEqual(seen, [
      [2, 4],
      [4, 4],
    ]);
  });

  test("an interval that leaves nothing to judge, a bad shape or policy are EplbInputErrors", () => {
    assert.throws(
      () => simulate(flip, { ...flipConfig, interval: 4 }),
      (e: unknown) =>
        e instanceof EplbInputError &&
        e.message ===
          "interval (4) must be smaller than the trace's steps (4) so at least one rebalance is judged",
    );
    assert.throws(
      () => simulate(flip, { ...flipConfig, numGpus: 3 }),
      /numGpus \(3\) must divide numReplicas \(4\)/,
    );
    assert.throws(() => simulate(flip, { ...flipConfig, policy: "nope" }), /policy \("nope"\)/);
    assert.throws(() => simulate(flip, { ...flipConfig, window: 0 }), /window \(0\)/);
    assert.throws(
      () => simulate({ steps: 2, layers: 1, experts: 2, data: new Float64Array(3) }, flipConfig),
      /trace\.data\.length \(3\) must equal steps \* layers \* experts/,
    );
  });
});

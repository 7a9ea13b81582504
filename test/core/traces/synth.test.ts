import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { driftWalk, resolveSynthOptions } from "../../../src/core/traces/synth.js";
import { EplbInputError, simulate, synthesizeTrace, synthTrace } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const small = { steps: 400, layers: 3, experts: 16, seed: 11 };

function meanPerExpert(data: Int32Array, from: number, to: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let t = from; t < to; t++)
    for (let i = 0; i < n; i++) out[i] += data[t * n + i] / (to - from);
  return out;
}

describe("synth: seeded synthetic traces", () => {
  test("the same seed gives the same trace; another seed a different one", () => {
    const a = synthesizeTrace(small);
    const b = synthesizeTrace(small);
    const c = synthesizeTrace({ ...small, seed: 12 });
    assert.deepEqual(a.data, b.data);
    assert.notDeepEqual(a.data, c.data);
  });

  test("counts are non-negative integers that sum to about `tokens` per layer and step", () => {
    const t = synthesizeTrace({ ...small, tokens: 5000 });
    const n = t.layers * t.experts;
    for (let s = 0; s < t.steps; s++) {
      for (let l = 0; l < t.layers; l++) {
        let sum = 0;
        for (let e = 0; e < t.experts; e++) {
          const v = t.data[s * n + l * t.experts + e];
          assert.ok(Number.isInteger(v) && v >= 0);
          sum += v;
        }
        // Poisson counts: the total has std sqrt(5000) ~ 71, so 5% is over 3 sigma.
        assert.ok(Math.abs(sum - 5000) < 250, `step ${s} layer ${l}: ${sum}`);
      }
    }
  });

  test("it is labelled synthetic, with its parameters", () => {
    const t = synthTrace(small);
    assert.equal(t.synthetic, true);
    assert.match(t.description, /^SYNTHETIC trace .*400 steps x 3 layers x 16 experts, seed 11/);
    assert.equal(t.options.sigma, 1);
  });

  test("sigma sets the skew: experts are far from equally popular at sigma 1, equal at 0", () => {
    const skewed = synthesizeTrace({ ...small, drift: 0, burstRate: 0 });
    const flat = synthesizeTrace({ ...small, sigma: 0, burstRate: 0 });
    const n = small.layers * small.experts;
    const cv = (m: Float64Array) => {
      const mean = m.reduce((a, b) => a + b, 0) / m.length;
      return Math.sqrt(m.reduce((a, b) => a + (b - mean) ** 2, 0) / m.length) / mean;
    };
    assert.ok(cv(meanPerExpert(skewed.data, 0, 400, n)) > 0.5);
    assert.ok(cv(meanPerExpert(flat.data, 0, 400, n)) < 0.05);
  });

  test("without drift popularity is stationary; with drift the halves differ", () => {
    const n = small.layers * small.experts;
    const change = (drift: number) => {
      const t = synthesizeTrace({ ...small, steps: 2000, drift, burstRate: 0 });
      const a = meanPerExpert(t.data, 0, 1000, n);
      const b = meanPerExpert(t.data, 1000, 2000, n);
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.abs(Math.log((a[i] + 1) / (b[i] + 1)));
      return s / n;
    };
    assert.ok(change(0) < 0.05, `stationary: ${change(0)}`);
    assert.ok(change(0.03) > 0.2, `drifting: ${change(0.03)}`);
  });

  test("bursts make one expert several times as popular for a while", () => {
    const base = { steps: 300, layers: 1, experts: 8, seed: 5, sigma: 0, drift: 0 };
    const calm = synthesizeTrace({ ...base, burstRate: 0 });
    const bursty = synthesizeTrace({ ...base, burstRate: 0.02, burstScale: 8, burstSteps: 20 });
    const peak = (d: Int32Array) => d.reduce((a, b) => Math.max(a, b), 0);
    assert.ok(peak(bursty.data) > 2.5 * peak(calm.data));
  });

  test("reading steps out of order gives the same steps as reading in order", () => {
    const t = synthesizeTrace(small);
    const gen = synthTrace(small);
    const n = small.layers * small.experts;
    const out = new Float64Array(n);
    for (const step of [7, 3, 3, 399, 0]) {
      gen.readStep(step, out, 0);
      assert.deepEqual(Array.from(out), Array.from(t.data.subarray(step * n, (step + 1) * n)));
    }
    assert.throws(() => gen.readStep(400, out, 0), EplbInputError);
  });

  test("a streamed synthetic trace simulates like its materialised copy", () => {
    const cfg = {
      numReplicas: 20,
      numGroups: 1,
      numNodes: 1,
      numGpus: 4,
      interval: 50,
      window: 50,
    };
    const a = simulate(synthTrace(small), cfg);
    const b = simulate(synthesizeTrace(small), cfg);
    assert.deepEqual(a.eplb.balancedness, b.eplb.balancedness);
  });

  test("bad parameters are EplbInputErrors", () => {
    assert.throws(
      () => synthTrace({ ...small, sigma: -1 }),
      /sigma \(-1\) must be a finite number >= 0/,
    );
    assert.throws(() => synthTrace({ ...small, steps: 0 }), /steps \(0\) must be an integer >= 1/);
    assert.throws(() => synthTrace({ ...small, burstRate: 2 }), /burstRate \(2\) must be <= 1/);
    assert.throws(() => synthTrace({ ...small, tokens: 1.5 }), /tokens \(1\.5\)/);
  });
});

describe("driftWalk: the popularity walk", () => {
  test("no drift when either parameter is 0: rho 1, innovation 0", () => {
    assert.deepEqual(driftWalk(1, 0, 50), { rho: 1, innovation: 0 });
    assert.deepEqual(driftWalk(0, 0.01, 50), { rho: 1, innovation: 0 });
  });

  test("keeps the stationary std at sigma and the short-term step std at drift", () => {
    for (const [sigma, drift] of [
      [1, 0.01],
      [0.5, 0.05],
      [2, 0.3],
    ]) {
      for (const steps of [1, 50]) {
        const { rho, innovation } = driftWalk(sigma, drift, steps);
        // Stationary: var = rho^2 var + innovation^2 holds at var = sigma^2.
        assert.ok(
          Math.abs(rho * rho * sigma * sigma + innovation * innovation - sigma * sigma) < 1e-12,
        );
        assert.ok(rho > 0 && rho < 1);
      }
      // Over one step from the stationary state the change has variance 2 sigma^2 (1 - rho),
      // about drift^2 when the mean reversion is slow.
      const { rho } = driftWalk(sigma, drift, 1);
      const stepVar = 2 * sigma * sigma * (1 - rho);
      assert.ok(Math.abs(stepVar / (drift * drift) - 1) < 0.05, `${stepVar} vs ${drift * drift}`);
      // Sampling every n steps is n single steps.
      assert.ok(Math.abs(driftWalk(sigma, drift, 50).rho - rho ** 50) < 1e-12);
    }
  });
});

describe("resolveSynthOptions", () => {
  test("fills the documented defaults", () => {
    assert.deepEqual(resolveSynthOptions({ steps: 10, layers: 2, experts: 8 }), {
      steps: 10,
      layers: 2,
      experts: 8,
      seed: 1,
      sigma: 1,
      drift: 0.01,
      tokens: 32768,
      burstRate: 0.002,
      burstScale: 4,
      burstSteps: 50,
    });
  });

  test("refuses each bad option, naming it, its value and the rule", () => {
    const base = { steps: 10, layers: 2, experts: 8 };
    const cases: [object, string, string][] = [
      [{ layers: 0 }, "layers", "layers (0) must be an integer >= 1"],
      [{ experts: 2.5 }, "experts", "experts (2.5) must be an integer >= 1"],
      [{ seed: -3 }, "seed", "seed (-3) must be an integer >= 0"],
      [
        { drift: Number.POSITIVE_INFINITY },
        "drift",
        "drift (Infinity) must be a finite number >= 0",
      ],
      [{ tokens: -1 }, "tokens", "tokens (-1) must be an integer >= 0"],
      [{ burstRate: -0.1 }, "burstRate", "burstRate (-0.1) must be a finite number >= 0"],
      [{ burstScale: Number.NaN }, "burstScale", "burstScale (NaN) must be a finite number >= 0"],
      [{ burstSteps: 0 }, "burstSteps", "burstSteps (0) must be an integer >= 1"],
    ];
    for (const [bad, parameter, message] of cases) {
      assertRefused(
        () => resolveSynthOptions({ ...base, ...bad }),
        EplbInputError,
        message,
        parameter,
      );
    }
    assert.equal(resolveSynthOptions({ ...base, tokens: 0, burstRate: 1, sigma: 0 }).tokens, 0);
  });
});

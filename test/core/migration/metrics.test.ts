// Tests of core/migration/metrics.ts: the smooth maximum GPU load a migration is judged by, and
// the transfer figures it reports.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  recordTransfers,
  smoothMaxGpuLoad,
  smoothOf,
} from "../../../src/core/migration/metrics.js";
import { SMOOTHING } from "../../../src/core/migration/options.js";
import { placementFromPhy2log } from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";

/** The smooth maximum as its JSDoc defines it, without the shift by the largest load. */
function plainSmoothMax(gpuLoads: number[], smoothing: number): number {
  const max = Math.max(...gpuLoads);
  const tau = (smoothing * gpuLoads.reduce((a, b) => a + b, 0)) / gpuLoads.length;
  if (!(tau > 0)) return max;
  return tau * Math.log(gpuLoads.reduce((a, l) => a + Math.exp(l / tau), 0));
}

describe("smoothOf", () => {
  test("no temperature (0, negative, NaN): the largest value given", () => {
    const load = [3, 9, 4];
    assert.equal(smoothOf(load, 3, 9, 0), 9);
    assert.equal(smoothOf(load, 3, 9, -1), 9);
    assert.equal(smoothOf(load, 3, 9, Number.NaN), 9);
  });

  test("n equal values: the value plus tau * log(n); only the first n values count", () => {
    assert.ok(Math.abs(smoothOf([5, 5, 5, 5, 100], 4, 5, 0.5) - (5 + 0.5 * Math.log(4))) < 1e-12);
  });

  test("property: between the largest value and that plus tau * log(n)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { minLength: 1, maxLength: 16 }),
        fc.double({ min: 1e-3, max: 50, noNaN: true }),
        (load, tau) => {
          const max = Math.max(...load);
          const v = smoothOf(load, load.length, max, tau);
          assert.ok(v >= max - 1e-9 && v <= max + tau * Math.log(load.length) + 1e-9);
        },
      ),
      { seed: 15, numRuns: 200 },
    );
  });
});

describe("smoothMaxGpuLoad", () => {
  test("property: equals the plain definition on random layers read at offsets", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(SMOOTHING, 0, 0.2),
        (gpus, slotsPerGpu, seed, smoothing) => {
          const P = gpus * slotsPerGpu;
          const E = Math.max(1, P - 1);
          let x = seed;
          const next = () => {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            return x;
          };
          // Two layers; the second is the one read, so the offsets matter.
          const rows = [0, 1].map(() => {
            const row = Array.from({ length: P }, (_, s) => (s < E ? s : next() % E));
            for (let s = P - 1; s > 0; s--) {
              const j = next() % (s + 1);
              [row[s], row[j]] = [row[j], row[s]];
            }
            return row;
          });
          const p = placementFromPhy2log(rows, E);
          const loads = Float64Array.from({ length: 2 * E }, () => next() % 50);
          const gpuLoads = Array.from({ length: gpus }, (_, g) => {
            let sum = 0;
            for (let j = 0; j < slotsPerGpu; j++) {
              const e = rows[1][g * slotsPerGpu + j];
              sum += loads[E + e] / p.logcnt[E + e];
            }
            return sum;
          });
          const got = smoothMaxGpuLoad(loads, E, p.phy2log, P, p.logcnt, E, gpus, P, smoothing);
          const want = plainSmoothMax(gpuLoads, smoothing);
          assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(1, want), `${got} vs ${want}`);
        },
      ),
      { seed: 15, numRuns: 200 },
    );
  });

  test("a hotter GPU raises it; the default smoothing is SMOOTHING", () => {
    const p = placementFromPhy2log([[0, 1, 2, 3]], 4);
    const even = smoothMaxGpuLoad(
      new Float64Array([5, 5, 5, 5]),
      0,
      p.phy2log,
      0,
      p.logcnt,
      0,
      2,
      4,
    );
    const hot = smoothMaxGpuLoad(
      new Float64Array([6, 5, 5, 4]),
      0,
      p.phy2log,
      0,
      p.logcnt,
      0,
      2,
      4,
    );
    assert.ok(hot > even);
    assert.equal(
      even,
      smoothMaxGpuLoad(
        new Float64Array([5, 5, 5, 5]),
        0,
        p.phy2log,
        0,
        p.logcnt,
        0,
        2,
        4,
        SMOOTHING,
      ),
    );
    assert.ok(Math.abs(even - (10 + 0.3 * Math.log(2))) < 1e-12);
  });
});

describe("recordTransfers", () => {
  const t = makeTopology(3, 4, 1, 2, 2);
  const blank = () => ({
    transfers: { local: -1, intraNode: -1, interNode: -1 },
    maxGpuTransfersIn: -1,
    maxGpuTransfersOut: -1,
  });

  test("the documented example: one local copy, one inter-node copy, busiest GPU 1 in and 1 out", () => {
    const m = blank();
    const given = placementFromPhy2log([[0, 1, 2, 0]], 3);
    const plan = recordTransfers(m, given, placementFromPhy2log([[0, 0, 2, 1]], 3), t);
    assert.deepEqual(m, {
      transfers: { local: 1, intraNode: 0, interNode: 1 },
      maxGpuTransfersIn: 1,
      maxGpuTransfersOut: 1,
    });
    assert.equal(plan.local + plan.intraNode + plan.interNode, 2);
  });

  test("the busiest receiver and sender: GPU 1 takes two copies, both read from GPU 0", () => {
    // GPU 1 (node 1) gives its two copies of expert 2 for experts 0 and 1 from GPU 0, and GPU 0
    // takes expert 2 from GPU 1: three inter-node copies, GPU 1 receives 2 and GPU 0 sends 2.
    const m = blank();
    const given = placementFromPhy2log([[0, 1, 2, 2]], 3);
    recordTransfers(m, given, placementFromPhy2log([[0, 2, 0, 1]], 3), t);
    assert.deepEqual(m.transfers, { local: 0, intraNode: 0, interNode: 3 });
    assert.equal(m.maxGpuTransfersIn, 2);
    assert.equal(m.maxGpuTransfersOut, 2);
  });

  test("in and out are separate maxima: GPU 0 receives from two GPUs, each sends one", () => {
    const t3 = makeTopology(3, 6, 1, 3, 3);
    const m = blank();
    const given = placementFromPhy2log([[0, 0, 1, 1, 2, 2]], 3);
    recordTransfers(m, given, placementFromPhy2log([[1, 2, 1, 0, 2, 2]], 3), t3);
    assert.deepEqual(m.transfers, { local: 0, intraNode: 0, interNode: 3 });
    assert.equal(m.maxGpuTransfersIn, 2);
    assert.equal(m.maxGpuTransfersOut, 1);
  });

  test("no change: zero transfers and zero busiest figures (not -Infinity)", () => {
    const m = blank();
    const p = placementFromPhy2log([[0, 1, 2, 0]], 3);
    recordTransfers(m, p, p, t);
    assert.deepEqual(m, {
      transfers: { local: 0, intraNode: 0, interNode: 0 },
      maxGpuTransfersIn: 0,
      maxGpuTransfersOut: 0,
    });
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { synthesizeTrace } from "../../src/index.js";
import { type PlainConfig, runSweep, sweepGrid } from "../../src/pipeline/sweep.js";
import { sweepHtml } from "../../src/pipeline/sweep-report.js";
import { smallSimulation } from "../helpers/small-cases.js";

describe("sweepHtml", () => {
  test("one page: the sweep chart labelled by the swept values, the front marked", async () => {
    const trace = synthesizeTrace({ steps: 80, layers: 2, experts: 8, seed: 2 });
    const base: PlainConfig = smallSimulation;
    const rows = await runSweep(trace, sweepGrid(base, { interval: ["10", "20"] }), 1, () => {});
    const html = sweepHtml(trace, base, rows, "trace.npy");
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /EPLB simulation sweep/);
    assert.match(html, /trace\.npy/);
    // The varied parameter names the axis; each configuration is a labelled point.
    assert.match(html, /interval/);
    assert.match(html, /10( \*)?</);
    assert.equal(sweepHtml(trace, base, rows, "trace.npy"), html);
  });
});

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { simulate } from "../../src/core/traces/simulate.js";
import { synthesizeTrace } from "../../src/index.js";
import { simulationHtml } from "../../src/report/simulation.js";
import { smallSimulation } from "../helpers/small-cases.js";

describe("simulationHtml", () => {
  const trace = synthesizeTrace({ steps: 90, layers: 2, experts: 8, seed: 4 });
  const result = simulate(trace, smallSimulation);

  test("the simulation first, then the last placement under the steps it was judged on", () => {
    const html = simulationHtml(result, "trace.npy");
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /EPLB simulation report/);
    const last = result.rebalanceSteps[result.rebalanceSteps.length - 1];
    assert.ok(html.includes(`steps ${last}..89, the last placement`));
    // The standard sections follow the simulation's.
    const simulation = html.indexOf("Simulation: realised balance over time");
    assert.ok(simulation > 0);
    assert.ok(simulation < html.indexOf("Balancedness per layer"));
    assert.ok(simulation < html.indexOf("Placement grid"));
    assert.match(html, /<svg/);
  });

  test("the same simulation gives the same page", () => {
    assert.equal(simulationHtml(result, "t"), simulationHtml(result, "t"));
  });
});

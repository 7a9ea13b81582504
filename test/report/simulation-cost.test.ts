import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simulate } from "../../src/core/traces/simulate.js";
import { cumulativeSeconds, simulationSection } from "../../src/report/simulation.js";
import { flipConfig as config, msModel as cost, flip } from "../helpers/priced-flip.js";

describe("the simulation report with prices", () => {
  it("cumulative time: each step's MoE time, each stall at the step its rebalance takes effect", () => {
    const r = simulate(flip, { ...config, cost, costGate: false });
    // Steps 2, 3: 10/3 ms each; the rebalance at step 4 stalls 1 ms; steps 4, 5: 2 ms each.
    const got = Array.from(cumulativeSeconds(r, r.eplb), (x) => x * 1e3);
    const want = [10 / 3, 20 / 3, 20 / 3 + 1 + 2, 20 / 3 + 1 + 4];
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) < 1e-9, `${got} vs ${want}`);
    }
    assert.ok(Math.abs(got[3] - (r.eplb.cost?.totalMs ?? 0)) < 1e-9);
    assert.equal(cumulativeSeconds(simulate(flip, config), simulate(flip, config).eplb).length, 0);
  });

  it("the section draws the cumulative chart and the priced columns only when priced", () => {
    const priced = simulationSection(simulate(flip, { ...config, cost }), "flip").render(
      {} as never,
    );
    assert.match(priced, /Cumulative time: MoE time plus rebalancing stalls/);
    assert.match(priced, /MoE ms \/ step/);
    const plain = simulationSection(simulate(flip, config), "flip").render({} as never);
    assert.doesNotMatch(plain, /Cumulative time|MoE ms/);
  });
});

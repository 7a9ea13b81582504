import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EplbInputError,
  getPolicy,
  type RebalanceOptions,
  rebalanceExperts,
  registerPolicy,
} from "../../../src/index.js";

const weight = [[10, 40, 20, 30]];

describe("rebalanceExperts options: typed per policy, an unknown one refused", () => {
  test("a misspelt balanced option names itself and the known options", () => {
    // A JavaScript caller (or a spread of parsed settings) can pass any field.
    const misspelt = { epsilonn: 1e-3 } as RebalanceOptions;
    assert.throws(
      () => rebalanceExperts(weight, 6, 1, 1, 2, misspelt),
      (e: unknown) =>
        e instanceof EplbInputError &&
        e.parameter === "options" &&
        e.value === "epsilonn" &&
        /balanced policy/.test(e.message) &&
        /known options: .*epsilon, .*relaxedHierarchy/.test(e.message),
    );
  });

  test("the deepseek policy has no options of its own: a balanced one is refused with it", () => {
    assert.throws(
      () => rebalanceExperts(weight, 6, 1, 1, 2, { policy: "deepseek", epsilon: 1e-3 }),
      /options \("epsilon"\) is not an option of the deepseek policy/,
    );
    // Its known options are the common and migration ones.
    const plan = rebalanceExperts(weight, 6, 1, 1, 2, { policy: "deepseek", moveBudget: 2 });
    assert.deepEqual(plan.phy2log, [[1, 1, 0, 2, 3, 3]]);
  });

  test("known options and undefined fields pass", () => {
    const plan = rebalanceExperts(weight, 6, 1, 1, 2, {
      epsilon: 1e-3,
      relaxedHierarchy: false,
      distinctPerGpu: true,
      minGain: undefined,
    });
    assert.equal(plan.policy, "balanced");
  });

  test("a registered policy accepts the options it declares, and only those", () => {
    const seen: unknown[] = [];
    registerPolicy({
      name: "options-spy",
      description: "records its knob, then plans as deepseek",
      options: ["knob"],
      plan: (loads, topology, options: { knob?: number }) => {
        seen.push(options.knob);
        return getPolicy("deepseek").plan(loads, topology, {});
      },
    });
    const knob = { policy: "options-spy", knob: 3 } as RebalanceOptions;
    rebalanceExperts(weight, 6, 1, 1, 2, knob);
    assert.deepEqual(seen, [3]);
    const typo = { policy: "options-spy", knobb: 3 } as RebalanceOptions;
    assert.throws(() => rebalanceExperts(weight, 6, 1, 1, 2, typo), /known options: .*knob,/);
  });
});

describe("registerPolicy: a policy's option names", () => {
  test("options that are not an array of names are refused", () => {
    const bad = {
      name: "bad-options",
      description: "options as one string",
      options: "knob",
      plan: () => {
        throw new Error("not planned");
      },
    } as unknown as Parameters<typeof registerPolicy>[0];
    assert.throws(
      () => registerPolicy(bad),
      /policy bad-options: options \("knob"\) must be an array of option names/,
    );
    assert.throws(() => getPolicy("bad-options"), /must be one of/);
  });
});

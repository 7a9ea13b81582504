// Tests of core/policies/index.ts: the policy registry (names, look-up, registration).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbInputError } from "../../../src/core/model/errors.js";
import { balancedPolicy } from "../../../src/core/policies/balanced.js";
import { deepseekPolicy } from "../../../src/core/policies/deepseek.js";
import {
  DEFAULT_POLICY,
  getPolicy,
  policyNames,
  registerPolicy,
} from "../../../src/core/policies/index.js";
import type { Policy } from "../../../src/core/policies/policy.js";
import { assertRefused } from "../../helpers/refused.js";

describe("policy registry", () => {
  test("the built-in policies, the default first, each found by its name", () => {
    assert.equal(DEFAULT_POLICY, "balanced");
    assert.deepEqual(policyNames(), ["balanced", "deepseek"]);
    assert.equal(getPolicy("balanced"), balancedPolicy);
    assert.equal(getPolicy("deepseek"), deepseekPolicy);
  });

  test("an unknown name is refused in one line listing the known ones", () => {
    assertRefused(
      () => getPolicy("Balanced"),
      EplbInputError,
      'policy ("Balanced") must be one of: balanced, deepseek',
      "policy",
    );
  });

  test("a registered policy is listed after the default and replaces one of its name", () => {
    const first: Policy = { name: "aaa-mine", description: "first", plan: deepseekPolicy.plan };
    const second: Policy = { name: "aaa-mine", description: "second", plan: deepseekPolicy.plan };
    registerPolicy(first);
    // Named to sort before "balanced": the default still comes first.
    assert.deepEqual(policyNames(), ["balanced", "deepseek", "aaa-mine"]);
    registerPolicy(second);
    assert.equal(getPolicy("aaa-mine").description, "second");
    assert.deepEqual(policyNames(), ["balanced", "deepseek", "aaa-mine"]);
  });

  test("options must be an array of names; an empty array is fine", () => {
    const bad = { name: "opts", description: "", plan: deepseekPolicy.plan, options: ["a", 1] };
    assertRefused(
      () => registerPolicy(bad as unknown as Policy),
      EplbInputError,
      "policy opts: options (array of length 2) must be an array of option names",
      "policy opts: options",
    );
    assertRefused(
      () => registerPolicy({ ...bad, options: "a" } as unknown as Policy),
      EplbInputError,
      /^policy opts: options \("a"\) must be an array of option names$/,
    );
    assert.throws(() => getPolicy("opts"), /must be one of/, "a refused policy is not registered");
    registerPolicy({ name: "opts", description: "", plan: deepseekPolicy.plan, options: [] });
    assert.deepEqual(getPolicy("opts").options, []);
  });
});

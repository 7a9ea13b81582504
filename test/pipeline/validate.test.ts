import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import type { PlainConfig } from "../../src/pipeline/sweep.js";
import { checkSimulationConfig } from "../../src/pipeline/validate.js";

const shape = { steps: 200, layers: 4, experts: 16 };
const config: PlainConfig = {
  numReplicas: 20,
  numGroups: 1,
  numNodes: 1,
  numGpus: 4,
  interval: 50,
  window: 50,
};

describe("checkSimulationConfig", () => {
  test("a sound configuration passes", () => {
    checkSimulationConfig(config, shape);
    checkSimulationConfig({ ...config, policy: "deepseek", estimator: "ema", halfLife: 10 }, shape);
  });

  test("each mistake is an EplbInputError naming its parameter", () => {
    const refused = (c: Partial<PlainConfig>, parameter: RegExp) =>
      assert.throws(
        () => checkSimulationConfig({ ...config, ...c }, shape),
        (e: unknown) => e instanceof EplbInputError && parameter.test(e.message),
      );
    refused({ numReplicas: 12 }, /numReplicas/);
    refused({ numReplicas: 22 }, /numReplicas|numGpus/);
    refused({ policy: "nonesuch" }, /policy/);
    refused({ estimator: "nonesuch" as PlainConfig["estimator"] }, /estimator|kind/);
  });

  test("the cluster shape is checked before the policy", () => {
    assert.throws(
      () => checkSimulationConfig({ ...config, numReplicas: 12, policy: "nonesuch" }, shape),
      /numReplicas/,
    );
  });
});

// The tiny trace the pricing tests compute by hand, and the cost models they price it with.
import { type CostModel, makeCostModel } from "../../src/core/cost/model.js";
import type { LoadTrace } from "../../src/core/traces/estimators.js";
import type { SimulationConfig } from "../../src/core/traces/simulate.js";

/** 1 layer, 2 experts, 6 steps: popularity [3, 1] flips to [1, 3] after two steps and stays. */
export const FLIP_ROWS = [[[3, 1]], [[3, 1]], [[1, 3]], [[1, 3]], [[1, 3]], [[1, 3]]];

export const flip: LoadTrace = {
  steps: 6,
  layers: 1,
  experts: 2,
  data: Float64Array.from(FLIP_ROWS.flat(2)),
};

/** Two GPUs of two slots, DeepSeek's plans on the window mean, a rebalance every 2 steps. */
export const flipConfig: SimulationConfig = {
  numReplicas: 4,
  numGroups: 1,
  numNodes: 1,
  numGpus: 2,
  interval: 2,
  window: 2,
  estimator: "mean",
  policy: "deepseek",
};

/** 1 ms per (token, expert) pair, 1 ms per copy (1 MB over 8 Gb/s). */
export const msModel: CostModel = makeCostModel({
  expertBytes: 1e6,
  intraGbps: 8,
  interGbps: 8,
  tokenUs: 1000,
});

/** DeepSeek-V3-sized experts on 1600 / 400 Gb/s links. */
export const ordinaryModel: CostModel = makeCostModel({
  expertBytes: 44e6,
  intraGbps: 1600,
  interGbps: 400,
  tokenUs: 0.05,
});

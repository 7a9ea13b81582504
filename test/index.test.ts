import { describe, it } from "node:test";
import * as entry from "../src/index.js";
import { assertEntry } from "./helpers/entry.js";

/** Every run-time name of eplb (types are counted by test/entries.test.ts). */
const NAMES = [
  "DEFAULT_ESTIMATOR",
  "DEFAULT_POLICY",
  "ESTIMATOR_KINDS",
  "EplbInputError",
  "Random",
  "createEstimator",
  "createPlacement",
  "dispatchStats",
  "engineBalance",
  "estimateLoads",
  "evaluatePlacement",
  "getPolicy",
  "gpuLoads",
  "lognormalLoads",
  "lowerBounds",
  "makeCostModel",
  "makeRouting",
  "makeTopology",
  "matrixToArrays",
  "migratePlacement",
  "nodeLoads",
  "placementFromPhy2log",
  "placementViolation",
  "planBalanced",
  "planDeepseek",
  "planTransfers",
  "planWithRouting",
  "policyNames",
  "rebalanceExperts",
  "registerPolicy",
  "scheduleTransfers",
  "simulate",
  "summarizeBalance",
  "synthRouting",
  "synthTrace",
  "synthesizeTrace",
  "toLoadMatrix",
  "toPreviousPlacement",
  "toReferencePlacement",
  "traceSource",
  "transferList",
  "zipfLoads",
];

describe("eplb", () => {
  it("exposes exactly its 42 names, and package.json maps eplb to this file", async () => {
    await assertEntry(entry, "eplb", NAMES);
  });
});

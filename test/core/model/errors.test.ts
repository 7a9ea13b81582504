import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EplbInputError,
  makeTopology,
  rebalanceExperts,
  toLoadMatrix,
} from "../../../src/index.js";

function rejects(fn: () => unknown, parameter: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof EplbInputError, `expected EplbInputError, got ${String(error)}`);
    assert.equal(error.parameter, parameter);
    assert.match(error.message, message);
    return true;
  });
}

const w = [[1, 2, 3, 4]];

describe("bad shapes are rejected with the parameter, value and rule", () => {
  test("numGpus must divide numReplicas", () => {
    rejects(
      () => rebalanceExperts(w, 16, 1, 1, 6),
      "numGpus",
      /^numGpus \(6\) must divide numReplicas \(16\)$/,
    );
  });
  test("numGroups must divide the expert count", () => {
    rejects(
      () => rebalanceExperts(w, 4, 3, 1, 2),
      "numGroups",
      /numGroups \(3\) must divide the number of experts \(4\)/,
    );
  });
  test("numNodes must divide numGpus", () => {
    rejects(
      () => rebalanceExperts(w, 6, 1, 4, 6),
      "numNodes",
      /numNodes \(4\) must divide numGpus \(6\)/,
    );
  });
  test("numReplicas must be at least the expert count", () => {
    rejects(
      () => rebalanceExperts(w, 2, 1, 1, 2),
      "numReplicas",
      /numReplicas \(2\) must be >= the number of experts \(4\)/,
    );
  });
  for (const [name, args] of [
    ["numReplicas", [0, 1, 1, 1]],
    ["numGroups", [4, 1.5, 1, 1]],
    ["numNodes", [4, 1, -1, 1]],
    ["numGpus", [4, 1, 1, Number.NaN]],
  ] as const) {
    test(`${name} must be a positive integer`, () => {
      rejects(
        () => rebalanceExperts(w, args[0], args[1], args[2], args[3]),
        name,
        /must be an integer >= 1/,
      );
    });
  }
  test("an unknown policy names the known ones", () => {
    rejects(
      () => rebalanceExperts(w, 4, 1, 1, 2, { policy: "magic" }),
      "policy",
      /policy \("magic"\) must be one of: .*deepseek/,
    );
  });
  test("makeTopology computes the derived sizes", () => {
    const t = makeTopology(256, 288, 8, 4, 32);
    assert.deepEqual(
      [t.slotsPerGpu, t.gpusPerNode, t.slotsPerNode, t.expertsPerGroup, t.hierarchical],
      [9, 8, 72, 32, true],
    );
    assert.equal(makeTopology(256, 288, 8, 18, 144).hierarchical, false);
  });
});

describe("bad loads are rejected, zero loads are valid", () => {
  test("empty matrix", () => rejects(() => toLoadMatrix([]), "weight", /at least one layer/));
  test("empty layer", () => rejects(() => toLoadMatrix([[]]), "weight[0]", /at least one expert/));
  test("ragged matrix", () =>
    rejects(() => toLoadMatrix([[1, 2], [3]]), "weight[1].length", /ragged/));
  test("NaN", () =>
    rejects(() => toLoadMatrix([[1, Number.NaN]]), "weight[0][1]", /must be finite/));
  test("Infinity", () =>
    rejects(() => toLoadMatrix([[Number.POSITIVE_INFINITY]]), "weight[0][0]", /must be finite/));
  test("negative", () => rejects(() => toLoadMatrix([[1], [-2]]), "weight[1][0]", /must be >= 0/));
  test("non-numeric", () =>
    rejects(
      () => toLoadMatrix([["7" as unknown as number]]),
      "weight[0][0]",
      /\("7"\) must be a number/,
    ));
  test("not a matrix", () =>
    rejects(() => toLoadMatrix(42 as unknown as number[][]), "weight", /2-D array/));
  test("typed matrix with the wrong length", () =>
    rejects(
      () => toLoadMatrix({ layers: 2, experts: 3, data: new Float64Array(5) }),
      "weight.data.length",
      /must equal layers \* experts/,
    ));
  test("all-zero loads still give a valid plan", () => {
    const r = rebalanceExperts([[0, 0, 0, 0]], 8, 2, 2, 4);
    assert.equal(
      r.logcnt[0].reduce((a, b) => a + b),
      8,
    );
  });
});

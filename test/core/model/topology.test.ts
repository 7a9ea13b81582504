/**
 * src/core/model/topology.ts: the cluster shape is validated once, against the reference's own
 * preconditions, and decides the path (hierarchical or global) and the locality mode every
 * policy and evaluator then share.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { localityOf, makeTopology } from "../../../src/core/model/topology.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

const refused = (fn: () => unknown, parameter: string, message: string) =>
  assertRefused(fn, EplbInputError, message, parameter);

describe("makeTopology", () => {
  test("derives the sizes of DeepSeek-V3's deployment (256 experts, 288 slots, 4 nodes of 8 GPUs)", () => {
    assert.deepEqual(makeTopology(256, 288, 8, 4, 32), {
      numExperts: 256,
      numReplicas: 288,
      numGroups: 8,
      numNodes: 4,
      numGpus: 32,
      slotsPerGpu: 9,
      gpusPerNode: 8,
      slotsPerNode: 72,
      expertsPerGroup: 32,
      hierarchical: true,
    });
  });

  test("hierarchical exactly when nodes divide groups; the global path ignores groups", () => {
    assert.equal(makeTopology(4, 8, 2, 2, 4).hierarchical, true);
    assert.equal(makeTopology(4, 8, 1, 1, 4).hierarchical, true);
    assert.equal(makeTopology(4, 8, 3, 2, 4).hierarchical, false);
    // 3 groups do not divide 4 experts: refused on the hierarchical path only (as the reference).
    assert.equal(makeTopology(4, 8, 3, 2, 4).expertsPerGroup, 4 / 3);
    refused(
      () => makeTopology(4, 8, 3, 1, 4),
      "numGroups",
      "numGroups (3) must divide the number of experts (4) when numGroups % numNodes == 0 (hierarchical)",
    );
  });

  test("each precondition is refused naming the parameter, the value and the rule", () => {
    refused(
      () => makeTopology(16, 16, 4, 2, 6),
      "numGpus",
      "numGpus (6) must divide numReplicas (16)",
    );
    refused(
      () => makeTopology(16, 16, 4, 3, 8),
      "numNodes",
      "numNodes (3) must divide numGpus (8)",
    );
    refused(
      () => makeTopology(16, 8, 1, 1, 4),
      "numReplicas",
      "numReplicas (8) must be >= the number of experts (16) so every expert has a slot",
    );
    refused(
      () => makeTopology(16, 15, 1, 1, 5),
      "numReplicas",
      "numReplicas (15) must be >= the number of experts (16) so every expert has a slot",
    );
    assert.equal(makeTopology(16, 16, 1, 1, 4).slotsPerGpu, 4);
    for (const [i, name] of [
      "numExperts",
      "numReplicas",
      "numGroups",
      "numNodes",
      "numGpus",
    ].entries()) {
      const args: [number, number, number, number, number] = [4, 8, 1, 1, 4];
      for (const bad of [0, 1.5, Number.NaN]) {
        args[i] = bad;
        assert.throws(
          () => makeTopology(...args),
          (e: unknown) => e instanceof EplbInputError && e.parameter === name,
          `${name} = ${bad}`,
        );
      }
    }
    assert.throws(
      () => makeTopology(4, 100000, 1, 1, 4),
      (e: unknown) => e instanceof EplbInputError && e.parameter === "numReplicas",
    );
  });
});

describe("localityOf", () => {
  test("strict or relaxed on a hierarchical topology, global otherwise whatever the option", () => {
    const hierarchical = makeTopology(256, 288, 8, 4, 32);
    assert.equal(localityOf(hierarchical), "strict");
    assert.equal(localityOf(hierarchical, false), "strict");
    assert.equal(localityOf(hierarchical, true), "relaxed");
    const global = makeTopology(4, 8, 3, 2, 4);
    assert.equal(localityOf(global), "global");
    assert.equal(localityOf(global, true), "global");
  });
});

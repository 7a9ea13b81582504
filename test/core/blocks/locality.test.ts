import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packGroupsToNodes } from "../../../src/core/blocks/locality.js";
import { hierarchyBounds } from "../../../src/core/evaluation/hierarchy.js";
import { makeTopology, toLoadMatrix } from "../../../src/index.js";

describe("packGroupsToNodes: idle experts take slots (regression)", () => {
  // 10 groups of one expert on 2 nodes of 3 GPUs, 6 slots per node: every node holds 5 experts,
  // so the node with the 63 can give it only 2 replicas: no partition gets below 63 / 2. The
  // bound used to skip water-filling because ceil(load / perGpu) gave the idle experts 0 slots,
  // and claimed 21 (the node's load per GPU) with 63 on a node of idle experts.
  const loads = [63, 0, 0, 0, 0, 1, 1, 1, 1, 1];
  const shape = { numExperts: 10, numGroups: 10, numNodes: 2, gpusPerNode: 3, slotsPerNode: 6 };

  test("the node bound counts one slot per idle expert", () => {
    const nodeOfGroup = new Int32Array(10);
    assert.equal(packGroupsToNodes(loads, 0, shape, nodeOfGroup), 31.5);
  });

  test("hierarchyBounds no longer reports the flat 21 as the hierarchy's bound", () => {
    const t = makeTopology(10, 12, 10, 2, 6);
    assert.deepEqual(Array.from(hierarchyBounds(toLoadMatrix([loads]), t).bounds), [31.5]);
  });
});

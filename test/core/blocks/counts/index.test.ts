import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { estimateMaxLoad } from "../../../../src/core/blocks/counts/estimate.js";
import { homeAwareCounts } from "../../../../src/core/blocks/counts/home-aware.js";
import * as counts from "../../../../src/core/blocks/counts/index.js";
import { searchReplicaCounts } from "../../../../src/core/blocks/counts/search.js";
import { CountsWorkspace } from "../../../../src/core/blocks/counts/workspace.js";

describe("the counts barrel", () => {
  test("exposes exactly what eplb/blocks and the policies import from it, as the modules define them", () => {
    // The estimate's internals (sortByReplicaLoad, reorder, estimateSorted) stay private to the folder.
    assert.deepEqual(Object.keys(counts).sort(), [
      "CountsWorkspace",
      "estimateMaxLoad",
      "homeAwareCounts",
      "searchReplicaCounts",
    ]);
    assert.equal(counts.CountsWorkspace, CountsWorkspace);
    assert.equal(counts.estimateMaxLoad, estimateMaxLoad);
    assert.equal(counts.homeAwareCounts, homeAwareCounts);
    assert.equal(counts.searchReplicaCounts, searchReplicaCounts);
  });
});

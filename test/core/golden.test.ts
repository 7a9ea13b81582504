import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { rebalanceExperts } from "../../src/index.js";
import { sharedDir } from "../helpers/cli.js";
import { type GoldenCase, goldenFiles, ownGoldenDir } from "../helpers/golden.js";

const goldenDir = join(sharedDir, "golden");
const files = goldenFiles(goldenDir);
const ownFiles = goldenFiles(ownGoldenDir);

/** log2phy rows compared as sets: the reference's unstable sort may order an expert's slots differently. */
function normalizeLog2phy(log2phy: number[][][]): number[][][] {
  return log2phy.map((layer) =>
    layer.map((slots) => {
      const used = slots.filter((s) => s >= 0).sort((a, b) => a - b);
      const padding = slots.slice(used.length);
      assert.ok(
        padding.every((s) => s === -1),
        "-1 padding must come after an expert's slots",
      );
      return [...used, ...padding];
    }),
  );
}

describe("deepseek policy reproduces DeepSeek's reference on every golden case", () => {
  test("the golden folder holds the 206 cases", () => {
    assert.equal(files.length, 206);
  });
  test("the repository's own golden folder holds 35 cases, 11 of them on shapes only the global path accepts", () => {
    assert.equal(ownFiles.length, 35);
    assert.equal(ownFiles.filter((f) => f.startsWith("accepted-")).length, 11);
  });
  const all = [
    ...files.map((f) => join(goldenDir, f)),
    ...ownFiles.map((f) => join(ownGoldenDir, f)),
  ];
  for (const path of all) {
    const file = path.slice(path.lastIndexOf("/") + 1);
    test(file, () => {
      const c = JSON.parse(readFileSync(path, "utf8")) as GoldenCase;
      const { weight, numReplicas, numGroups, numNodes, numGpus } = c.input;
      const r = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus, {
        policy: "deepseek",
      });
      assert.equal(r.topology.hierarchical, c.policy === "hierarchical");
      assert.deepEqual(r.phy2log, c.expected.phy2log);
      assert.deepEqual(r.logcnt, c.expected.logcnt);
      assert.deepEqual(normalizeLog2phy(r.log2phy), normalizeLog2phy(c.expected.log2phy));
    });
  }
});

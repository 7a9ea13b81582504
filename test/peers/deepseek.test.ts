// Random parity against DeepSeek's reference: deepseek-ai/EPLB eplb.py at commit
// d52c72d (run with torch by test/fixtures/golden/make_golden.py; its outputs are committed).
// The golden test checks the deepseek policy slot for slot on these files; this file checks
// what eplb promises beyond parity on the same random inputs: the balanced policy returns a valid
// plan that is never worse than the reference's on any layer, and accepts every shape the
// reference accepts (the accepted-* cases: numGroups does not divide the experts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { gpuLoads, placementViolation, rebalanceExperts, toLoadMatrix } from "../../src/index.js";
import { type GoldenCase, goldenFiles, ownGoldenDir } from "../helpers/golden.js";

const dir = ownGoldenDir;
const files = goldenFiles(dir);

function maxPerLayer(gpu: Float64Array, layers: number, G: number): number[] {
  return Array.from({ length: layers }, (_, l) => Math.max(...gpu.subarray(l * G, (l + 1) * G)));
}

describe("DeepSeek eplb.py, random cases made with torch", () => {
  test("35 cases, 11 on shapes only the reference's global path accepts", () => {
    assert.equal(files.length, 35);
  });
  for (const file of files) {
    test(`${file}: deepseek is the reference, balanced is valid and never worse per layer`, () => {
      const c = JSON.parse(readFileSync(join(dir, file), "utf8")) as GoldenCase;
      const { weight, numReplicas, numGroups, numNodes, numGpus } = c.input;
      const ds = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus, {
        policy: "deepseek",
      });
      assert.deepEqual(ds.phy2log, c.expected.phy2log);
      const bal = rebalanceExperts(weight, numReplicas, numGroups, numNodes, numGpus);
      assert.equal(placementViolation(bal.placement), null);
      const loads = toLoadMatrix(weight);
      const before = maxPerLayer(gpuLoads(loads, ds.placement, { numGpus }), loads.layers, numGpus);
      const after = maxPerLayer(gpuLoads(loads, bal.placement, { numGpus }), loads.layers, numGpus);
      for (let l = 0; l < loads.layers; l++) {
        assert.ok(after[l] <= before[l] * (1 + 1e-9), `layer ${l}: ${after[l]} > ${before[l]}`);
      }
    });
  }
});

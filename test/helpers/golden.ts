import { readdirSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./cli.js";

/** One golden case: the reference's inputs and its outputs (../shared/golden, test/fixtures/golden). */
export interface GoldenCase {
  name: string;
  policy: "hierarchical" | "global";
  input: {
    weight: number[][];
    numReplicas: number;
    numGroups: number;
    numNodes: number;
    numGpus: number;
  };
  expected: { phy2log: number[][]; log2phy: number[][][]; logcnt: number[][] };
}

/** eplb's own cases, made with DeepSeek's eplb.py by test/fixtures/golden/make_golden.py. */
export const ownGoldenDir = join(repoRoot, "test", "fixtures", "golden");

/** The JSON case files of a golden folder, sorted. */
export function goldenFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort();
}

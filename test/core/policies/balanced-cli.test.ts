import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cli, repoRoot } from "../../helpers/cli.js";

const example = join(repoRoot, "examples", "loads.json");
const shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];

describe("eplb plan with the balanced policy", () => {
  test("plans with balanced by default; --help lists both policies, balanced as the default", async () => {
    const r = await cli(["plan", "--loads", example, ...shape]);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.metrics.policy, "balanced");
    assert.equal(out.metrics.after.duplicateGpus, 0);
    assert.equal(out.metrics.after.offNodeShare, 0);
    assert.equal(out.metrics.after.lowerBound.length, 2);
    const help = await cli(["plan", "--help"]);
    assert.match(help.stdout, /--policy NAME +one of: balanced \(default\), deepseek/);
    assert.match(help.stdout, /--relaxed/);
  });

  test("the summary shows the lower bound, max/lower bound, duplicates and off-node share", async () => {
    const r = await cli(["plan", "--loads", example, ...shape]);
    assert.match(r.stderr, /max GPU load \/ lower bound +\d\.\d{3} mean, \d\.\d{3} worst layer/);
    assert.match(r.stderr, /lower bound [\d.]+ per layer on average/);
    assert.match(r.stderr, /two replicas of one expert: 0/);
    assert.match(r.stderr, /load served off its group's node: 0\.0%/);
  });

  test("--relaxed lets replicas leave their group's node and reports the share it serves there", async () => {
    const strict = JSON.parse((await cli(["plan", "--loads", example, ...shape])).stdout);
    const r = await cli(["plan", "--loads", example, ...shape, "--relaxed"]);
    assert.equal(r.code, 0);
    const relaxed = JSON.parse(r.stdout);
    assert.ok(relaxed.metrics.after.offNodeShare > 0);
    assert.ok(relaxed.metrics.after.balancedness > strict.metrics.after.balancedness);
    assert.match(r.stderr, /load served off its group's node: [1-9]\d*\.\d%/);
  });

  test("--relaxed with --policy deepseek is a one-line usage error (exit 2)", async () => {
    const r = await cli([
      "plan",
      "--loads",
      example,
      ...shape,
      "--policy",
      "deepseek",
      "--relaxed",
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "eplb plan: --relaxed needs a policy other than deepseek\n");
  });
});

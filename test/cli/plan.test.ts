import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { binPath, cli, repoRoot, sharedDir, spawnCli } from "../helpers/cli.js";

const example = join(repoRoot, "examples", "loads.json");
const shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];
const tmp = mkdtempSync(join(tmpdir(), "eplb-plan-"));

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

describe("eplb plan", () => {
  test("writes the reference-shaped placement and metrics as JSON on stdout", async () => {
    const r = await cli(["plan", "--loads", example, ...shape, "--policy", "deepseek"]);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    // The README example is DeepSeek's own example: the same placement as its README.
    const golden = JSON.parse(
      readFileSync(join(sharedDir, "golden", "readme-example.json"), "utf8"),
    );
    assert.deepEqual(out.phy2log, golden.expected.phy2log);
    assert.deepEqual(out.logcnt, golden.expected.logcnt);
    assert.equal(out.log2phy.length, 2);
    assert.equal(out.metrics.policy, "deepseek");
    assert.equal(out.metrics.mode, "hierarchical");
    assert.ok(out.metrics.after.balancedness > out.metrics.before.balancedness);
    assert.ok(out.metrics.after.maxOverLowerBound >= 1);
  });

  test("prints a human summary on stderr: before/after, lower bound, duplicates, time", async () => {
    const r = await cli(["plan", "--loads", example, ...shape, "--policy", "deepseek"]);
    assert.match(r.stderr, /balancedness .* before 0\.\d{3} .* after 0\.\d{3}/);
    assert.match(r.stderr, /max GPU load \/ lower bound +\d\.\d{3} mean/);
    assert.match(r.stderr, /two replicas of one expert: \d+/);
    assert.match(r.stderr, /planned in [\d.]+ ms/);
  });

  test("accepts a bare 2-D array and writes to --out", async () => {
    const loads = file("bare.json", JSON.stringify([[5, 1, 1, 1]]));
    const out = join(tmp, "plan.json");
    const r = await cli(["plan", "--loads", loads, "--replicas", "6", "--gpus", "2", "--out", out]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "");
    assert.equal(
      JSON.parse(readFileSync(out, "utf8")).logcnt[0].reduce((a: number, b: number) => a + b),
      6,
    );
  });

  const mistakes: Array<[string, string[], RegExp]> = [
    ["unknown flag", ["plan", "--loads", example, ...shape, "--bogus"], /unknown option --bogus/],
    ["missing --loads", ["plan", ...shape], /--loads is required/],
    ["missing --gpus", ["plan", "--loads", example, "--replicas", "16"], /--gpus is required/],
    [
      "non-integer value",
      ["plan", "--loads", example, "--replicas", "16.5", "--gpus", "8"],
      /--replicas \("16.5"\) must be an integer/,
    ],
    [
      "indivisible shape",
      ["plan", "--loads", example, "--replicas", "16", "--gpus", "6"],
      /numGpus \(6\) must divide numReplicas \(16\)/,
    ],
    [
      "unknown policy",
      ["plan", "--loads", example, ...shape, "--policy", "nope"],
      /policy \("nope"\) must be one of/,
    ],
    [
      "unreadable file",
      ["plan", "--loads", join(tmp, "missing.json"), ...shape],
      /cannot read .*missing\.json/,
    ],
    ["invalid JSON", ["plan", "--loads", file("bad.json", "[[1, 2,"), ...shape], /invalid JSON/],
    [
      "negative load",
      ["plan", "--loads", file("neg.json", "[[1, -2, 3, 4]]"), "--replicas", "4", "--gpus", "2"],
      /\[0\]\[1\] \(-2\) must be finite and >= 0/,
    ],
    [
      "ragged loads",
      ["plan", "--loads", file("ragged.json", "[[1, 2], [3]]"), "--replicas", "4", "--gpus", "2"],
      /ragged/,
    ],
    ["unknown command", ["plam"], /unknown command "plam"/],
    [
      "negative value without =",
      ["plan", "--loads", example, "--replicas", "-16", "--gpus", "8"],
      /--replicas needs a value; to give one that starts with "-", write --replicas=-VALUE/,
    ],
  ];
  for (const [name, argv, message] of mistakes) {
    test(`a user mistake (${name}) prints one line on stderr, nothing on stdout, exit 2`, () => {
      const r = spawnCli(argv);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }

  test("--help for plan lists the flags and the policies", async () => {
    const r = await cli(["plan", "--help"]);
    assert.equal(r.code, 0);
    for (const flag of [
      "--loads",
      "--replicas",
      "--groups",
      "--nodes",
      "--gpus",
      "--policy",
      "--out",
      "deepseek",
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });

  test("--version prints the package version; --help lists commands", async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
    assert.equal((await cli(["--version"])).stdout.trim(), pkg.version);
    const help = await cli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /plan +plan a placement/);
  });

  test("a reader that closes the pipe early (eplb ... | head) is not an error", async () => {
    // Large enough output (58 x 288 slots) that the first write fills the pipe.
    const loads = file(
      "big.json",
      JSON.stringify(
        Array.from({ length: 58 }, (_, l) =>
          Array.from({ length: 256 }, (_, e) => ((l * 31 + e * 17) % 97) + 1),
        ),
      ),
    );
    const child = spawn(process.execPath, [
      binPath,
      "plan",
      "--loads",
      loads,
      "--replicas",
      "288",
      "--gpus",
      "32",
      "--policy",
      "deepseek",
    ]);
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdout.once("data", () => child.stdout.destroy());
    const code = await new Promise<number | null>((done) => child.on("close", done));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|internal error/);
  });
});

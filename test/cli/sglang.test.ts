/**
 * SGLang dumps through the real executable: several --loads and folders summed, refusals in one
 * line with exit 2, warnings on stderr, eval's per-pass SGLang balancedness.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { repoRoot, spawnCli } from "../helpers/cli.js";

const dir = join(repoRoot, "test/fixtures/engines/sglang");
const at = (name: string) => join(dir, name);
const expected = JSON.parse(readFileSync(at("expected.json"), "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "eplb-sglang-"));
const shape = ["--replicas", "10", "--gpus", "2"];
const [rank0, rank1] = expected.per_pass.files.map(at) as string[];

/** A refusal: exit 2, one line on stderr, nothing on stdout. */
function refused(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

describe("eplb plan on SGLang dumps", () => {
  const summed = join(tmp, "summed.json");
  writeFileSync(summed, JSON.stringify({ weight: expected.per_pass.loads }));
  const reference = spawnCli(["plan", "--loads", summed, ...shape]);

  test("two rank files are summed: the plan of the summed loads, files counted", () => {
    assert.equal(reference.code, 0, reference.stderr);
    const r = spawnCli(["plan", "--loads", rank0, "--loads", rank1, ...shape]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).phy2log, JSON.parse(reference.stdout).phy2log);
    assert.match(
      r.stderr,
      /read: 2 files summed \(SGLang per_pass dump\), 4 forward passes, ranks 0, 1/,
    );
    // Regression: a repeated --loads used to keep only the last file.
    const last = spawnCli(["plan", "--loads", rank1, ...shape]);
    assert.notDeepEqual(JSON.parse(last.stdout).metrics.after, JSON.parse(r.stdout).metrics.after);
  });

  test("a folder of dumps is its files, sorted", () => {
    const r = spawnCli(["plan", "--loads", at("per_pass"), ...shape]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).phy2log, JSON.parse(reference.stdout).phy2log);
  });

  test("a folder without dumps is refused in one line", () => {
    const empty = join(tmp, "empty");
    mkdirSync(empty);
    writeFileSync(join(empty, "notes.txt"), "x");
    refused(spawnCli(["plan", "--loads", empty, ...shape]), /no SGLang dumps/);
  });

  test("--steps on a stat dump is refused in one line, saying why", () => {
    const stat = at("stat/expert_distribution_recorder_1760000000.2.pt");
    refused(
      spawnCli(["plan", "--loads", stat, ...shape, "--steps", "-1000:"]),
      /ring buffer.*not in time order/,
    );
    assert.equal(spawnCli(["plan", "--loads", stat, ...shape]).code, 0);
  });

  test("loads that are all zero, or a dump without passes, warn on stderr", () => {
    const empty = spawnCli(["plan", "--loads", at("per_pass_empty.pt"), ...shape]);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stderr, /^warning: .*no recorded forward pass/m);
    assert.match(empty.stderr, /^warning: .*all zero/m);
    const zero = spawnCli(["plan", "--loads", at("stat_empty.pt"), ...shape]);
    assert.match(zero.stderr, /^warning: .*all zero/m);
    const fine = spawnCli(["plan", "--loads", at("per_pass"), ...shape]);
    assert.doesNotMatch(fine.stderr, /warning/);
  });

  test("the older CSVs of two ranks are merged by layer and expert", () => {
    const csvLoads = join(tmp, "csv.json");
    writeFileSync(csvLoads, JSON.stringify({ weight: expected.csv.loads }));
    const want = spawnCli(["plan", "--loads", csvLoads, "--replicas", "8", "--gpus", "2"]);
    const r = spawnCli(["plan", "--loads", at("csv"), "--replicas", "8", "--gpus", "2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).phy2log, JSON.parse(want.stdout).phy2log);
    assert.match(r.stderr, /model layers 3\.\.5/);
    // The CSV names the model layers: TensorRT-LLM's file is keyed by them.
    const trt = spawnCli([
      "plan",
      "--loads",
      at("csv"),
      "--replicas",
      "8",
      "--gpus",
      "2",
      "--output-format",
      "trtllm",
    ]);
    assert.equal(trt.code, 0, trt.stderr);
    assert.match(trt.stdout, /^ {2}3: \[/m);
    assert.match(trt.stdout, /^ {2}5: \[/m);
  });

  test("report takes several --loads too", () => {
    const html = join(tmp, "r.html");
    const r = spawnCli(["report", "--loads", rank0, "--loads", rank1, ...shape, "--html", html]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe("eplb eval on SGLang per_pass dumps", () => {
  const recording = join(tmp, "recording.json");
  writeFileSync(
    recording,
    JSON.stringify({ physical_to_logical_map: expected.physicalToLogicalMap }),
  );
  const identity = join(tmp, "identity.json");
  writeFileSync(
    identity,
    JSON.stringify({ phy2log: [0, 1, 2].map(() => [0, 1, 2, 3, 4, 5, 6, 7]) }),
  );

  test("SGLang's logged balancedness: per pass from the recorded counts, averaged", () => {
    const r = spawnCli([
      "eval",
      "--loads",
      at("per_pass"),
      "--placement",
      recording,
      "--gpus",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const per: number[] = expected.per_pass.sglangBalancednessPerPass;
    const mean = per.reduce((a, b) => a + b, 0) / per.length;
    assert.ok(Math.abs(json.sglangPerPass.recorded - mean) < 1e-12);
    assert.equal(json.sglangPerPass.passes, 4);
    assert.match(json.definitions.sglangPerPass, /current_pass_balancedness/);
    assert.equal(json.loads.files, 2);
  });

  test("the evaluated placement per pass: SGLang's formula on each pass, then the mean", () => {
    // One slot per expert, experts 0-3 on GPU 0: each pass's GPU loads are sums of its loads.
    const r = spawnCli([
      "eval",
      "--loads",
      at("per_pass"),
      "--placement",
      identity,
      "--gpus",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const passes: number[][][] = expected.per_pass.passes;
    let sum = 0;
    for (const pass of passes) {
      let layers = 0;
      for (const row of pass) {
        const g = [row.slice(0, 4), row.slice(4)].map((x) => x.reduce((a, b) => a + b, 0));
        layers += ((g[0] + g[1]) / 2 + 1e-5) / (Math.max(...g) + 1e-5);
      }
      sum += layers / pass.length;
    }
    assert.ok(Math.abs(JSON.parse(r.stdout).sglangPerPass.placement - sum / passes.length) < 1e-12);
  });

  test("the table names whose definition every figure follows", () => {
    const r = spawnCli(["eval", "--loads", at("per_pass"), "--placement", identity, "--gpus", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .split("\n")
      .slice(4)
      .filter((l) => /\d\.\d{3}|^\(/.test(l) && !/^ /.test(l));
    for (const row of rows)
      assert.match(row, /DeepSeek|vLLM|SGLang|TensorRT-LLM|vllm-ascend|eplb/, row);
    assert.match(r.stdout, /SGLang balancedness per pass, mean of 4/);
    assert.match(r.stdout, /SGLang's own balancedness while recording/);
  });
});

describe("eplb simulate on SGLang dumps", () => {
  const args = ["--replicas", "10", "--gpus", "2", "--interval", "2", "--json"];

  test("per_pass dumps of two ranks replay pass by pass", () => {
    const r = spawnCli(["simulate", "--trace", rank0, "--trace", rank1, ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).trace.steps, 4);
    const folder = spawnCli(["simulate", "--trace", at("per_pass"), ...args]);
    assert.deepEqual(JSON.parse(folder.stdout).eplb, JSON.parse(r.stdout).eplb);
  });

  test("files that cannot be summed step-wise, and stat dumps, are refused in one line", () => {
    refused(spawnCli(["simulate", "--trace", at("csv"), ...args]), /per_pass/);
    refused(
      spawnCli([
        "simulate",
        "--trace",
        at("stat/expert_distribution_recorder_1760000000.1.pt"),
        ...args,
      ]),
      /ring buffer/,
    );
  });
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { parseLayerList } from "../../src/cli/report.js";
import { cli, repoRoot, spawnCli } from "../helpers/cli.js";
import { assertRefused } from "../helpers/refused.js";

const EXAMPLE = join(repoRoot, "examples", "loads.json");
const PLAN = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "eplb-report-"));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A user mistake: exit 2, one line on stderr naming the problem, nothing on stdout. */
async function assertUsageError(argv: string[], pattern: RegExp): Promise<void> {
  const r = await cli(argv, repoRoot);
  assert.equal(r.code, 2, `exit code for ${argv.join(" ")}: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.split("\n").filter((l) => l !== "").length, 1, r.stderr);
  assert.match(r.stderr, /^eplb report: /);
  assert.match(r.stderr, pattern);
}

describe("eplb report: user mistakes exit 2 with one line", () => {
  it("requires --html", async () => {
    await assertUsageError(["report", "--loads", EXAMPLE, ...PLAN], /--html is required/);
  });

  it("requires --loads", async () => {
    await assertUsageError(
      ["report", "--html", join(dir, "x.html"), ...PLAN],
      /--loads is required/,
    );
  });

  it("rejects unknown flags and stray arguments", async () => {
    const html = join(dir, "x.html");
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--colour", "red", ...PLAN],
      /unknown option --colour/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "extra", ...PLAN],
      /unexpected argument "extra"/,
    );
  });

  it("rejects bad plan options", async () => {
    const html = join(dir, "x.html");
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--replicas", "16", "--gpus", "six"],
      /--gpus \("six"\) must be an integer >= 1/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--replicas", "16", "--gpus", "6"],
      /numGpus \(6\) must divide numReplicas \(16\)/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, ...PLAN, "--policy", "magic"],
      /policy \("magic"\) must be one of/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--gpus", "8"],
      /--replicas is required/,
    );
  });

  it("rejects --placement together with planning options, and layers out of range", async () => {
    const html = join(dir, "x.html");
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--placement", "p.json", ...PLAN],
      /--replicas plans a placement; it cannot be combined with --placement/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, ...PLAN, "--layers", "0,7"],
      /--layers: 7 is not a layer \(0\.\.1\)/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, ...PLAN, "--layers", "first"],
      /--layers \("first"\) must be layer indices/,
    );
  });

  it("reports unreadable inputs and unwritable outputs", async () => {
    await assertUsageError(
      ["report", "--loads", join(dir, "missing.json"), "--html", join(dir, "x.html"), ...PLAN],
      /cannot read .*missing\.json/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", join(dir, "no", "such", "dir.html"), ...PLAN],
      /cannot write .*dir\.html/,
    );
  });

  it("needs the GPU count for a placement file that does not record it", async () => {
    const p = join(dir, "bare.json");
    writeFileSync(
      p,
      JSON.stringify({
        phy2log: [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3]].concat([
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 4, 5, 6, 7],
        ]),
      }),
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", join(dir, "x.html"), "--placement", p],
      /--gpus is required with --placement/,
    );
    await assertUsageError(
      [
        "report",
        "--loads",
        EXAMPLE,
        "--html",
        join(dir, "x.html"),
        "--placement",
        p,
        "--gpus",
        "3",
      ],
      /numGpus \(3\) must divide the placement's slots per layer \(16\)/,
    );
  });

  it("rejects a placement for other experts than the loads", async () => {
    const p = join(dir, "other.json");
    writeFileSync(
      p,
      JSON.stringify({
        phy2log: [
          [0, 1, 2, 3],
          [3, 2, 1, 0],
        ],
      }),
    );
    const r = await cli(
      [
        "report",
        "--loads",
        EXAMPLE,
        "--html",
        join(dir, "x.html"),
        "--placement",
        p,
        "--gpus",
        "2",
      ],
      repoRoot,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });
});

describe("eplb report: writes the report", () => {
  it("plans and writes one HTML file, with a one-line summary on stderr", async () => {
    const html = join(dir, "report.html");
    const r = await cli(["report", "--loads", EXAMPLE, "--html", html, ...PLAN], repoRoot);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^eplb report: wrote .*report\.html \(\d+ kB\): balancedness 0\.\d{3} before, 0\.\d{3} after \(worst layer 0\.\d{3} -> 0\.\d{3}\)\n$/,
    );
    const text = readFileSync(html, "utf8");
    assert.match(text, /^<!doctype html>/);
    assert.match(text, /<th scope="row">Policy<\/th><td>balanced \(hierarchical\)<\/td>/);
    assert.match(text, /loads: [^<]*loads\.json/);
  });

  it("writes to stdout with --html -", async () => {
    const r = await cli(
      ["report", "--loads", EXAMPLE, "--html", "-", ...PLAN, "--title", "Mine"],
      repoRoot,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^<!doctype html>[\s\S]*<h1>Mine<\/h1>[\s\S]*<\/html>\n$/);
    assert.match(r.stderr, /wrote the report to stdout/);
  });

  it("reports on an eplb plan file exactly as when it plans itself", async () => {
    const plan = join(dir, "plan.json");
    const p = await cli(["plan", "--loads", EXAMPLE, ...PLAN, "--out", plan], repoRoot);
    assert.equal(p.code, 0, p.stderr);
    const direct = await cli(["report", "--loads", EXAMPLE, "--html", "-", ...PLAN], repoRoot);
    const fromFile = await cli(
      ["report", "--loads", EXAMPLE, "--html", "-", "--placement", plan],
      repoRoot,
    );
    assert.equal(fromFile.code, 0, fromFile.stderr);
    // Same figures (GPU and node counts come from the plan's metrics); only the policy label
    // and the planning time differ.
    assert.equal(fromFile.stderr.split(": ")[2], direct.stderr.split(": ")[2]);
    assert.match(fromFile.stdout, /placement: [^<]*plan\.json/);
    assert.match(fromFile.stdout, /Policy<\/th><td>balanced \(from file\) \(hierarchical\)/);
    assert.match(fromFile.stdout, /Planning time<\/th><td>-<\/td>/);
    const grids = (fromFile.stdout.match(/Node 1<\/text>/g) ?? []).length;
    assert.ok(grids >= 1, "the plan's two nodes are drawn");
  });

  it("shows the chosen layers with --layers", async () => {
    const r = await cli(
      ["report", "--loads", EXAMPLE, "--html", "-", ...PLAN, "--layers", "1"],
      repoRoot,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stdout.match(/class="chart placement-grid"/g) ?? []).length, 1);
    assert.match(r.stdout, /data-layer="1" data-cells="16"/);
  });

  it("is listed in eplb --help and has its own help", async () => {
    const main = await cli(["--help"]);
    assert.match(main.stdout, /^ {2}report +write a self-contained HTML report/m);
    const help = await cli(["report", "--help"]);
    assert.equal(help.code, 0);
    assert.match(
      help.stdout,
      /^Usage: eplb report --loads FILE\|DIR \[--loads FILE \.\.\.\] --html FILE/,
    );
  });

  it("exits 2 with one line from the real binary too", () => {
    const r = spawnCli(["report", "--loads", EXAMPLE, ...PLAN], repoRoot);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "eplb report: --html is required\n");
  });
});

describe("eplb report: --steps takes a negative start as plan and eval do", () => {
  it("reads --steps -2: (the last two steps), not as a missing value", async () => {
    const trace = join(dir, "trace.json");
    const steps: number[][][] = [];
    for (let s = 0; s < 5; s++) {
      steps.push([Array.from({ length: 12 }, (_, e) => (s < 3 ? 1 : 100 + e * (s + 1)))]);
    }
    writeFileSync(trace, JSON.stringify({ logical_count: steps }));
    const html = join(dir, "steps.html");
    const r = await cli(
      [
        "report",
        "--loads",
        trace,
        "--key",
        "logical_count",
        "--steps",
        "-2:",
        ...PLAN,
        "--html",
        html,
      ],
      repoRoot,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(html, "utf8"), /<svg/);
  });
});

describe("parseLayerList (--layers)", () => {
  it("reads comma-separated layer indices, spaces allowed, in the order given", () => {
    assert.deepEqual(parseLayerList("3, 7", 58), [3, 7]);
    assert.deepEqual(parseLayerList("57,0", 58), [57, 0]);
    assert.deepEqual(parseLayerList(" 0 ", 1), [0]);
  });

  it("refuses what is not a layer index, and a layer past the last, in one line", () => {
    for (const text of ["", "1,", "-1", "1.5", "a", "1;2", "0x1"]) {
      assertRefused(
        () => parseLayerList(text, 58),
        UsageError,
        `--layers (${JSON.stringify(text)}) must be layer indices like 0,5,57`,
      );
    }
    assertRefused(
      () => parseLayerList("3,58", 58),
      UsageError,
      "--layers: 58 is not a layer (0..57)",
    );
  });
});

describe("eplb report: flags that need another", () => {
  it("cost flags without --previous, and --placement or --previous without a file, exit 2", async () => {
    const html = join(dir, "x.html");
    await assertUsageError(
      [
        "report",
        "--loads",
        EXAMPLE,
        "--html",
        html,
        ...PLAN,
        "--expert-bytes",
        "1e6",
        "--link-gbps",
        "1600,400",
      ],
      /cost flags price a rebalance's transfers: give --previous/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, "--placement=", "--gpus", "8"],
      /--placement needs a file/,
    );
    await assertUsageError(
      ["report", "--loads", EXAMPLE, "--html", html, ...PLAN, "--previous="],
      /--previous needs a file/,
    );
  });
});
